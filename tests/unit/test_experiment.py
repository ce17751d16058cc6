"""Re-running a lagom call: a stored result says so, a changed train_fn or config starts anew."""

from __future__ import annotations

import hashlib
import json
import pathlib

import pytest

from maggy import HyperparameterOptConfig, MaggyWarning, Searchspace, experiment, load_result
from maggy.backends import LocalBackend
from maggy.store.replay import ExperimentLog
from maggy.store.storage import LocalStorage
from tests.helpers import ThreadBackend

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]))
RAN: list[str] = []


def train_v1(x):
    RAN.append("v1")
    return x


def train_v2(x):
    RAN.append("v2")
    return 10 + x


def cfg(tmp_path, **kw):
    kw.setdefault("num_trials", 3)
    return HyperparameterOptConfig(searchspace=SP, experiment_dir=str(tmp_path), es_policy="none", seed=0,
                                   hb_interval=0.05, name="rerun", **kw)


class NoBackend(LocalBackend):
    def prepare(self):
        raise AssertionError("the backend was started for an experiment that needed no run")


def digest(directory: pathlib.Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_finished_experiment_run_again_says_it_returns_the_stored_result(tmp_path):
    RAN.clear()
    first = experiment.lagom(train_v1, cfg(tmp_path), backend=ThreadBackend(), verbose=False)
    with pytest.warns(MaggyWarning) as caught:
        again = experiment.lagom(train_v1, cfg(tmp_path), backend=NoBackend(), verbose=True)
    (warning,) = [str(w.message) for w in caught]
    assert "already finished" in warning and first.experiment_dir in warning and "(3 trials)" in warning
    assert "resume=False" in warning and "num_trials > 3" in warning
    assert RAN == ["v1"] * 3 and again.best_metric == first.best_metric


def test_a_changed_train_fn_starts_a_new_experiment_and_leaves_the_old_one_alone(tmp_path):
    RAN.clear()
    old = experiment.lagom(train_v1, cfg(tmp_path), backend=ThreadBackend(), verbose=False)
    before = digest(pathlib.Path(old.experiment_dir))
    with pytest.warns(MaggyWarning, match="different train_fn") as caught:
        new = experiment.lagom(train_v2, cfg(tmp_path), backend=ThreadBackend(), verbose=False)
    message = str(caught[0].message)
    assert old.experiment_dir in message and new.experiment_dir in message and "resume=True" in message
    assert new.experiment_dir != old.experiment_dir and new.stats["resumes"] == 0
    assert RAN == ["v1"] * 3 + ["v2"] * 3
    assert (new.trials["metric"] >= 10).all() and (old.trials["metric"] < 10).all()
    assert digest(pathlib.Path(old.experiment_dir)) == before


def test_resume_true_continues_a_changed_train_fn_and_warns(tmp_path):
    RAN.clear()
    old = experiment.lagom(train_v1, cfg(tmp_path), backend=ThreadBackend(), verbose=False)
    with pytest.warns(MaggyWarning) as caught:
        more = experiment.lagom(train_v2, cfg(tmp_path, num_trials=5, resume=True), backend=ThreadBackend(),
                                verbose=False)
    messages = [str(w.message) for w in caught]
    assert any("train_fn changed" in m and "continues it anyway" in m for m in messages), messages
    assert any(m.startswith("Continuing experiment 'rerun'") and "finished its 3 trials, and 2 more run now" in m
               for m in messages), messages
    assert more.experiment_dir == old.experiment_dir and len(more.trials) == 5
    assert RAN == ["v1"] * 3 + ["v2"] * 2


def test_a_changed_searchspace_starts_anew_under_auto_and_is_refused_under_resume_true(tmp_path):
    old = experiment.lagom(train_v1, cfg(tmp_path), backend=ThreadBackend(), verbose=False)
    wider = cfg(tmp_path)
    wider.searchspace = Searchspace(x=("DOUBLE", [0.0, 2.0]))
    with pytest.warns(MaggyWarning, match=r"different searchspace \(x: .*1\.0.* then, .*2\.0.* now\)"):
        new = experiment.lagom(train_v1, wider, backend=ThreadBackend(), verbose=False)
    assert new.experiment_dir != old.experiment_dir
    from maggy import InvalidParameterError
    with pytest.raises(InvalidParameterError, match=r"direction \('max' then, 'min' now\), so resume=True cannot"):
        experiment.lagom(train_v1, cfg(tmp_path, direction="min", resume=True), backend=NoBackend(), verbose=False)


def quadratic(x, y, budget=None):
    return -(x - 0.3) ** 2 - (y - 0.6) ** 2


@pytest.mark.parametrize("optimizer", ["gp", "tpe", "random", "grid", "hyperband", "optuna"])
def test_every_documented_optimizer_runs_through_lagom(tmp_path, optimizer):
    """Names, aliases and the Optuna wrapper, end to end on in-process workers."""
    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]), y=("DOUBLE", [0.0, 1.0]))
    opt = optimizer
    if optimizer == "hyperband":
        from maggy.optimizers import Hyperband
        opt = Hyperband(resource_min=1, resource_max=9)
    elif optimizer == "optuna":
        optuna = pytest.importorskip("optuna")
        from maggy.optimizers import OptunaSampler
        opt = OptunaSampler(optuna.samplers.TPESampler(seed=0))
    elif optimizer == "grid":
        sp = Searchspace(x=("DISCRETE", [0.0, 0.3, 0.6]), y=("DISCRETE", [0.3, 0.6]))
    result = experiment.lagom(quadratic, sp, optimizer=opt, num_trials=8, seed=0, es_policy="none",
                              experiment_dir=str(tmp_path), backend=ThreadBackend(), verbose=False)
    table = result.trials
    expected = {"random": "randomsearch", "grid": "gridsearch"}.get(optimizer, optimizer)
    saved = json.loads((pathlib.Path(result.experiment_dir) / "result.json").read_text())
    if optimizer != "hyperband":  # Hyperband's promotions add runs, not trials; its count is its own
        assert len(table) == (6 if optimizer == "grid" else 8)
    assert set(table["state"]) == {"FINALIZED"} and result.best_metric == table["metric"].max()
    if optimizer == "hyperband":
        assert table["budget"].min() == 1 and any(len(r) > 1 for r in table["rungs"])  # trials were promoted
    if optimizer == "grid":
        assert result.best_params == {"x": 0.3, "y": 0.6}
    assert "handoff_p50_ms" in result.stats and result.stats["handoff_p50_ms"] >= 0
    if optimizer in ("gp", "tpe", "random", "grid"):
        assert ExperimentLog.read(LocalStorage(), result.experiment_dir).config["optimizer"] == expected
    assert saved["best_trial_id"] == result.best_trial_id


def test_extras_beyond_one_mib_fail_that_trial_only(tmp_path):
    def train(x):
        if x > 0.5:
            return {"metric": x, **{f"blob{i}": "x" * 60_000 for i in range(20)}}  # 1.2 MB together
        return {"metric": x, "note": "small"}
    result = experiment.lagom(train, SP, num_trials=8, seed=0, experiment_dir=str(tmp_path),
                              backend=ThreadBackend(), verbose=False)
    big = result.trials[result.trials["x"] > 0.5]
    assert len(big) > 0 and set(big["state"]) == {"ERROR"}
    assert big["error"].str.startswith("OutputTooLarge: train_fn returned 20 values of ").all()
    assert set(result.trials[result.trials["x"] <= 0.5]["state"]) == {"FINALIZED"}


def test_a_timed_out_experiment_continues_for_another_timeout(tmp_path):
    def train(x, reporter):
        import time
        for step in range(20):
            reporter.broadcast(x, step)
            time.sleep(0.05)  # a trial takes 1 s
        return x
    config = cfg(tmp_path, num_trials=20, timeout=1.5)
    first = experiment.lagom(train, config, backend=ThreadBackend(), verbose=False)
    assert first.stats["stopped"] == "timeout of 1.5s reached" and len(first.trials) < 20
    with pytest.warns(MaggyWarning, match="Continuing experiment 'rerun'"):
        second = experiment.lagom(train, config, backend=ThreadBackend(), verbose=False)
    assert second.experiment_dir == first.experiment_dir and second.stats["resumes"] == 1
    assert len(second.trials) > len(first.trials) and second.stats["stopped"] == "timeout of 1.5s reached"


BROKEN = {"on": True}


def flaky(x):
    RAN.append("flaky")
    if BROKEN["on"]:
        raise OSError("the data is not there")
    return x


def test_a_failed_experiment_run_again_raises_its_stored_error_unless_its_failed_trials_are_retried(tmp_path):
    from maggy import TrialsFailedError
    RAN.clear()
    BROKEN["on"] = True
    config = cfg(tmp_path, num_trials=4, num_workers=1)
    with pytest.raises(TrialsFailedError, match="OSError: the data is not there") as first:
        experiment.lagom(flaky, config, backend=ThreadBackend(1), verbose=False)
    assert RAN == ["flaky"] * 3  # fail_fast=3 stopped it, one trial left
    with pytest.raises(TrialsFailedError) as again:  # a scheduler's retry of the same job
        experiment.lagom(flaky, config, backend=NoBackend(), verbose=False)
    assert str(again.value).startswith(str(first.value)) and "This is the stored outcome" in str(again.value)
    assert "retry_failed=True" in str(again.value) and RAN == ["flaky"] * 3
    BROKEN["on"] = False  # the data arrived
    with pytest.warns(MaggyWarning, match=r"its 3 failed trials run again \(retry_failed=True\)"):
        retried = experiment.lagom(flaky, cfg(tmp_path, num_trials=4, num_workers=1, retry_failed=True),
                                   backend=ThreadBackend(1), verbose=False)
    assert RAN == ["flaky"] * 7 and list(retried.trials["state"]) == ["FINALIZED"] * 4
    assert load_result(retried.experiment_dir).trials["state"].tolist() == ["FINALIZED"] * 4  # the journal agrees


def test_the_defaults_stop_poor_trials_early(tmp_path):
    def train(x, reporter):
        import time
        for step in range(40):  # 4 s: heartbeats and early-stopping checks (1 s apart by default), even on a loaded machine
            reporter.broadcast(x, step)
            time.sleep(0.1)
        return x

    result = experiment.lagom(train, SP, experiment_dir=str(tmp_path), seed=0, backend=ThreadBackend(),
                              verbose=False)  # es_policy, es_min, es_interval and num_trials as they come
    assert len(result.trials) == 10 and (result.trials["state"] == "EARLY_STOPPED").any(), result.trials


def test_early_stopping_that_can_never_act_is_said_once(tmp_path):
    def train(x, reporter):
        return x

    with pytest.warns(MaggyWarning, match=r"es_policy='median' can never stop a trial: it acts once es_min=5 trials "
                                          r"have finished, and the experiment runs 5 trials") as caught:
        experiment.lagom(train, SP, num_trials=5, experiment_dir=str(tmp_path), backend=ThreadBackend(),
                         verbose=False)
    assert len([w for w in caught if "can never stop" in str(w.message)]) == 1
