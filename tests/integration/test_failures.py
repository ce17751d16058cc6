"""Every way an experiment fails: the error says why, and what finished is kept.

Each test checks the error's words, ``result.json`` (``outcome: failed``, the finished trials)
and the journal's end, as a resume would read them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import pathlib
import sys

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import LocalBackend
from maggy.callbacks import Callback
from maggy.exceptions import ExperimentFailedError
from maggy.store.events import Outcome
from maggy.store.replay import ExperimentLog
from maggy.store.storage import LocalStorage
from maggy.trial import TrialState
from tests.helpers import ThreadBackend


def the_experiment(root: pathlib.Path) -> tuple[dict, ExperimentLog]:
    """result.json and the journal of the only experiment under ``root``."""
    (name,) = root.iterdir()
    (exp_dir,) = name.iterdir()
    return json.loads((exp_dir / "result.json").read_text()), ExperimentLog.read(LocalStorage(), str(exp_dir))


def lethal(x):
    """Trials 0 and 1 finish; trial 2 kills its worker process, wherever it runs."""
    import os

    with open(os.environ["MAGGY_TEST_CALLS"], "a") as f:
        f.write(f"{x} {os.getpid()}\n")
    if x == 2:
        os._exit(3)
    return x


def test_workers_that_keep_dying_end_the_experiment_after_the_restart_cap(tmp_path, monkeypatch):
    """A local worker slot is restarted at most LocalBackend.MAX_RESTARTS times; then no worker
    is left and the experiment fails, keeping the two trials that finished."""
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("MAGGY_TEST_CALLS", str(calls))
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DISCRETE", [0, 1, 2, 3])), optimizer="gridsearch",
                                  num_workers=1, max_trial_retries=10, es_policy="none", hb_interval=0.05,
                                  experiment_dir=str(tmp_path / "exp"), name="dying")
    with pytest.raises(ExperimentFailedError) as info:
        experiment.lagom(lethal, cfg, backend=LocalBackend(), verbose=False)
    message = str(info.value)
    assert message.startswith("All workers ended before the experiment finished (worker processes exited with "
                              "codes [3] after 3 restarts); 2 finished trials are kept in ")
    assert "run the same lagom call again to continue" in message
    runs = [line.split() for line in calls.read_text().splitlines()]
    deaths = [pid for x, pid in runs if x == "2"]
    assert len(deaths) == 1 + LocalBackend.MAX_RESTARTS and len(set(deaths)) == len(deaths)  # a new process each
    saved, log = the_experiment(tmp_path / "exp")
    assert saved["outcome"] == "failed" and log.end.outcome is Outcome.FAILED
    states = {t["params"]["x"]: t["state"] for t in saved["trials"]}
    assert states[0] == states[1] == "FINALIZED" and states[2] == "PENDING"  # kept to run again on a resume
    assert log.trials[next(t["trial_id"] for t in saved["trials"] if t["params"]["x"] == 2)].attempts == 4


class NoWorkerEver(ThreadBackend):
    """Executors that are never granted: the job is submitted, no task ever runs."""

    def start(self, spec, num_workers, job_name) -> None:
        self.started = True

    def running(self) -> bool:
        return True


def test_no_worker_within_worker_timeout_fails_with_the_setting_named(tmp_path):
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=2, es_policy="none",
                                  worker_timeout=0.5, experiment_dir=str(tmp_path / "exp"), name="starved")
    backend = NoWorkerEver()
    with pytest.raises(ExperimentFailedError, match=r"^No worker could run for 0.5s \(worker_timeout\): no executor was "
                                                    r"granted, or every worker task failed \(no error reported\); 0 "
                                                    r"finished trials are kept in "):
        experiment.lagom(lambda x: x, cfg, backend=backend, verbose=False)
    assert backend.started
    saved, log = the_experiment(tmp_path / "exp")
    assert saved["outcome"] == "failed" and log.end.outcome is Outcome.FAILED and saved["best_trial_id"] is None


class Explodes(Callback):
    def __init__(self, after: int) -> None:
        self.after, self.ended = after, 0

    def on_trial_end(self, trial) -> None:
        self.ended += 1
        if self.ended == self.after:
            raise RuntimeError("the user's hook broke")


def test_a_callback_that_raises_ends_the_experiment_with_its_own_error_and_keeps_the_trials(tmp_path):
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=6, num_workers=1,
                                  es_policy="none", hb_interval=0.05, experiment_dir=str(tmp_path / "exp"),
                                  name="hook")
    with pytest.raises(RuntimeError, match="the user's hook broke") as info:
        experiment.lagom(lambda x: x, cfg, backend=ThreadBackend(1), verbose=False, callbacks=[Explodes(after=2)])
    assert info.traceback[-1].name == "on_trial_end"  # its own traceback
    saved, log = the_experiment(tmp_path / "exp")
    finished = [t for t in saved["trials"] if t["state"] == "FINALIZED"]
    assert saved["outcome"] == "failed" and len(finished) == 2 and log.ended == 2
    assert all(log.trials[t["trial_id"]].state is TrialState.FINALIZED for t in finished)
    assert not (pathlib.Path(saved["experiment_dir"]) / "lease.json").exists()  # the lease is given back


def test_spark_jobs_that_keep_failing_end_the_experiment_after_two_replacements(spark, tmp_path, monkeypatch, caplog):
    """Every task of the workers' Spark job fails before its worker registers (train_fn lives in a
    module the executors do not have): the job is replaced while its failures come quickly, up to
    SparkBackend.MAX_QUICK_FAILURES jobs in a row, and then the experiment fails with Spark's error."""
    from maggy.backends import SparkBackend

    path = tmp_path / "driver_only.py"  # a module this process loads from a file, off the executors' path
    path.write_text("def train(x):\n    return x\n")
    spec = importlib.util.spec_from_file_location("driver_only", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "driver_only", module)  # imported: pickled by reference, by its name
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=2, num_workers=2,
                                  es_policy="none", hb_interval=0.05, worker_timeout=40,
                                  experiment_dir=str(tmp_path / "exp"), name="unpicklable")
    backend = SparkBackend(spark)
    with caplog.at_level(logging.WARNING, logger="maggy.engine.backends.spark"):
        with pytest.raises(ExperimentFailedError, match=r"(?s)^All workers ended before the experiment finished "
                                                        r"\(PythonException: .*ModuleNotFoundError: No module named "
                                                        r"'driver_only'\); 0 finished trials are kept in "):
            experiment.lagom(module.train, cfg, backend=backend, verbose=False)
    replaced = [r for r in caplog.records if "submitting a replacement" in r.getMessage()]
    assert len(replaced) == SparkBackend.MAX_QUICK_FAILURES - 1 == 2
    tracker = spark.sparkContext.statusTracker()
    jobs = tracker.getJobIdsForGroup(backend.job_group)  # the first job and its replacements, in the same group
    assert len(jobs) == SparkBackend.MAX_QUICK_FAILURES and {tracker.getJobInfo(j).status for j in jobs} == {"FAILED"}
    saved, log = the_experiment(tmp_path / "exp")
    assert saved["outcome"] == "failed" and log.end.outcome is Outcome.FAILED and saved["best_trial_id"] is None
    assert log.end.stats["workers"] == []  # no worker ever registered
    assert saved["trials"] == []  # the point prepared ahead stays a suggestion until a worker takes it


def test_workers_that_cannot_reach_the_driver_name_the_address_they_were_given_and_the_setting(tmp_path):
    # the driver listens on a free port of loopback; the workers are told port 1, where nothing listens
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=2, num_workers=1,
                                  worker_timeout=5, experiment_dir=str(tmp_path), driver_address="127.0.0.1:1",
                                  driver_bind="127.0.0.1:0")
    with pytest.raises(ExperimentFailedError) as failed:
        experiment.lagom(lambda x: x, cfg, backend=LocalBackend(), verbose=False)
    message = str(failed.value)
    assert "No worker ever reached the driver at 127.0.0.1:1" in message and "driver_address=" in message
    assert "worker processes exited" in message  # the backend's own account follows
    saved, _ = the_experiment(tmp_path)
    assert saved["stats"]["rpc"]["advertised"] == "127.0.0.1:1" and saved["stats"]["rpc"]["bind"] != "127.0.0.1:1"
