"""Re-running a lagom call: a stored result says so, a changed train_fn or config starts anew."""

from __future__ import annotations

import hashlib
import pathlib

import pytest

from maggy import HyperparameterOptConfig, MaggyWarning, Searchspace, experiment
from maggy.backends import LocalBackend
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
