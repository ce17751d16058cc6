"""An ablation study that a test kills and runs again; prints the result as JSON.

    python ablation_job.py EXPERIMENT_DIR CALLS_FILE

Each trial appends its ablation's name to CALLS_FILE when it ends, so that the test can tell
which ablations ran twice; each takes about a second, so the test can kill the driver midway.
"""

from __future__ import annotations

import json
import os
import sys

from maggy import experiment
from maggy.ablation import AblationStudy

STUDY = AblationStudy(features=["a", "b", "c", "d"], groups={"ab": ["a", "b"]})


def train(ablation, reporter):
    import os
    import time

    for step in range(5):
        time.sleep(0.2)
        reporter.broadcast(float(step), step=step)
    with open(os.environ["MAGGY_TEST_CALLS"], "a") as f:
        f.write(f"{ablation.name}\n")
    return -len(ablation.features)


if __name__ == "__main__":
    root, os.environ["MAGGY_TEST_CALLS"] = sys.argv[1], sys.argv[2]
    result = experiment.lagom(train, STUDY, backend="local", num_workers=2, hb_interval=0.05, name="ablation",
                              experiment_dir=root, verbose=False)
    print("RESULT " + json.dumps({"stats": {"resumes": result.stats.get("resumes")},
                                  "ablation": json.loads(result.ablation.to_json(orient="records"))}))
