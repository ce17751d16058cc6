"""An experiment that the previous release (20d968a) left unfinished continues with this one.

No ``from __future__ import annotations`` here: it sets a flag on the code of ``train``, whose
fingerprint must be the one the fixture's journal recorded (the release ran ``train`` from a
script without it), as a user's unchanged script gives.
"""

import json
import os
import pathlib
import sys

import pytest

from maggy import Searchspace, experiment
from maggy.exceptions import MaggyWarning
from maggy.store.fingerprint import fingerprint
from maggy.store.replay import ExperimentLog, load_result
from maggy.store.storage import LocalStorage

#: A journal of ``lagom(train, ...)`` below as 20d968a wrote it, cut as a dead driver leaves it
#: (see tests/unit/store/test_compat.py): two trials finalized, one running, one pending.
OLD = pathlib.Path(__file__).resolve().parents[1] / "unit" / "store" / "data" / "journal_20d968a.jsonl"
RUN_ID = "20261207-081001-941c"


def train(x):
    with open(os.environ["MAGGY_OLD_JOURNAL_CALLS"], "a") as f:
        f.write(f"{x}\n")
    return x


def test_an_unfinished_experiment_of_the_previous_release_continues(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("MAGGY_OLD_JOURNAL_CALLS", str(calls))
    root = tmp_path / "exp"
    exp_dir = root / "old" / RUN_ID  # <experiment_dir>/<name>/<run id>, as find_previous looks
    exp_dir.mkdir(parents=True)
    old_text = OLD.read_text()
    old_lines = old_text.splitlines()
    start = json.loads(old_lines[0])
    if sys.version_info[:2] != (3, 11):  # the fixture's CPython; another's bytecode fingerprints otherwise
        start["fingerprint"] = fingerprint(train)
        old_text = "\n".join([json.dumps(start), *old_lines[1:]]) + "\n"
    (exp_dir / "journal.jsonl").write_text(old_text)
    before = ExperimentLog.read(LocalStorage(), str(exp_dir))
    assert fingerprint(train) == before.fingerprint
    finalized = {t.params["x"] for t in before.trials.values() if t.state.value == "FINALIZED"}
    in_flight = {t.params["x"] for t in before.trials.values() if t.state.value in ("RUNNING", "PENDING")}
    assert len(finalized) == 2 and len(in_flight) == 2

    with pytest.warns(MaggyWarning, match=rf"Continuing experiment 'old' in {exp_dir}: 2 of its 6 trials had ended"):
        result = experiment.lagom(train, Searchspace(x=("DOUBLE", [0, 1])), backend="local", num_trials=6,
                                  experiment_dir=str(root), name="old", verbose=False, es_policy="none")

    assert result.experiment_dir == str(exp_dir) and result.stats["resumes"] == 1
    assert len(result.trials) == 6 and set(result.trials["state"]) == {"FINALIZED"}
    ran = [float(line) for line in calls.read_text().splitlines()]
    assert len(ran) == 4  # only the missing trials: the two in flight, and two new ones
    assert in_flight <= set(ran) and not finalized & set(ran)
    assert finalized <= set(result.trials["x"])
    text = (exp_dir / "journal.jsonl").read_text()
    assert text.startswith(old_text)  # the old lines stay as written; the new driver appends
    after = ExperimentLog.read(LocalStorage(), str(exp_dir))
    assert after.finished and len(after.starts) == 2 and after.starts[-1].resumes == 1
    assert len(load_result(str(root / "old")).trials) == 6
