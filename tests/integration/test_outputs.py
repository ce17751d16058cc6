"""Outputs that cannot poison a worker: huge values, messages and logs end as trial errors or cut lines."""

from __future__ import annotations

import os

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import LocalBackend


def test_oversized_outputs_fail_their_trial_and_the_experiment_completes(tmp_path):
    def train(k, reporter):
        if k == 0:
            return {"metric": 1.0, "blob": "x" * 5_000_000}
        if k == 1:
            raise ValueError("y" * 5_000_000)
        if k == 2:
            reporter.log("z" * 10_000_000)
        if k == 3:
            for i in range(3000):
                reporter.log(f"line {i} " + "w" * 10_000)
        return float(k)

    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", [0, 1, 2, 3, 4])), optimizer="gridsearch",
                                  num_workers=2, es_policy="none", hb_interval=0.05, experiment_dir=str(tmp_path))
    result = experiment.lagom(train, cfg, backend=LocalBackend(), verbose=False)
    rows = result.trials.set_index("k")
    assert rows.loc[0, "state"] == "ERROR" and "'blob' of 5000002 bytes" in rows.loc[0, "error"]
    assert rows.loc[1, "state"] == "ERROR" and "more characters cut" in rows.loc[1, "error"]
    assert list(rows.loc[[2, 3, 4], "state"]) == ["FINALIZED"] * 3
    assert result.stats["worker_errors"] == [] and len(result.stats["workers"]) == 2  # no worker died
    logs = os.path.join(result.experiment_dir, "trials")
    cut = open(os.path.join(logs, f"{rows.loc[2, 'trial_id']}.log")).read()
    assert "9983616 more characters cut" in cut and len(cut) < 20_000
    many = open(os.path.join(logs, f"{rows.loc[3, 'trial_id']}.log")).read().splitlines()
    assert len(many) == 3000 and many[-1].startswith("line 2999 ")


def test_what_train_fn_prints_and_logs_lands_in_its_own_trial_log(tmp_path, backend):
    def train(k):
        import logging
        import sys
        for i in range(3000):
            print(f"MARKER {k} {i}")
        print(f"MARKER {k} on stderr", file=sys.stderr)
        logging.getLogger("user.code").warning(f"MARKER {k} logged")
        return float(k)

    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", [0, 1])), optimizer="gridsearch",
                                  num_workers=2, es_policy="none", hb_interval=0.05, experiment_dir=str(tmp_path))
    result = experiment.lagom(train, cfg, backend=backend, verbose=False)
    for row in result.trials.itertuples():
        log = open(os.path.join(result.experiment_dir, "trials", f"{row.trial_id}.log")).read().splitlines()
        assert log == [f"MARKER {row.k} {i}" for i in range(3000)] + [
            f"MARKER {row.k} on stderr", f"WARNING user.code: MARKER {row.k} logged"]
