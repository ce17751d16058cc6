"""The README's scheduled job, examples/tune_digits_torch.py, with a train_fn that always fails, for
spark-submit: test_spark_submit.py runs it twice, as a scheduler retries a failed job.

Every call of ``train`` appends a line to $MAGGY_TEST_CALLS, so the test sees what ran.
"""

from __future__ import annotations

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "examples"))

import tune_digits_torch as job  # noqa: E402 - the example's directory is not a package


def train(lr, hidden, dropout, reporter):
    with open(os.environ["MAGGY_TEST_CALLS"], "a") as f:
        f.write(f"{lr}\n")
    raise FileNotFoundError("the training data is not there yet")


if __name__ == "__main__":
    job.train = train  # the job's main() tunes this one
    job.main()
