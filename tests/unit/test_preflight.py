"""Bad input fails with a clear error before any worker or cluster work starts."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from maggy import HyperparameterOptConfig, InvalidParameterError, Searchspace, experiment
from maggy.backends import Backend

SP = Searchspace(lr=("DOUBLE", [0.01, 0.1]))


class RecordingBackend(Backend):
    """Fails the test if the experiment gets as far as the backend."""

    def prepare(self):
        raise AssertionError("the backend was touched before validation finished")

    num_slots = addresses = start = running = failure = wait = cancel = prepare


def test_signature_mismatch_is_caught_before_the_backend():
    def wrong(learning_rate):
        return learning_rate
    with pytest.raises(InvalidParameterError, match=r"requires \['learning_rate'\]"):
        experiment.lagom(wrong, SP, backend=RecordingBackend())


def test_unpicklable_train_fn_is_caught_before_the_backend():
    import threading
    lock = threading.Lock()

    def uses_lock(lr):
        with lock:
            return lr
    with pytest.raises(InvalidParameterError, match="cannot be serialised"):
        experiment.lagom(uses_lock, SP, backend=RecordingBackend())


def test_bad_second_argument_and_backend_name():
    with pytest.raises(InvalidParameterError, match=r"needs a searchspace: lagom\(train_fn, Searchspace"):
        experiment.lagom(lambda lr: lr, {"lr": ("DOUBLE", [0, 1])})
    with pytest.raises(InvalidParameterError, match="'backend' parameter must be 'spark', 'local'"):
        experiment.lagom(lambda lr: lr, HyperparameterOptConfig(searchspace=SP), backend="yarn")


def _lagom_error_in_fresh_process(preamble: str, env: dict) -> str:
    """Run a default lagom in a new interpreter (no Spark session yet); return what it printed."""
    code = preamble + textwrap.dedent("""
        from maggy import experiment, Searchspace
        from maggy.exceptions import BackendUnavailableError
        try:
            experiment.lagom(lambda x: x, Searchspace(x=("DOUBLE", [0, 1])), verbose=False)
        except BackendUnavailableError as e:
            print("ERROR:", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    return out.stdout + out.stderr


def test_missing_java_is_reported_before_spark_starts():
    out = _lagom_error_in_fresh_process("", {"PATH": "/nonexistent"})
    assert "ERROR: Spark needs Java 17 or newer" in out


def test_a_java_home_without_java_is_named_before_spark_starts():
    import os
    out = _lagom_error_in_fresh_process("", {"PATH": os.environ["PATH"], "JAVA_HOME": "/nonexistent"})
    assert "ERROR: JAVA_HOME='/nonexistent' has no bin/java" in out


def test_config_fields_as_lagom_keywords_and_the_errors_that_suggest_the_fix(tmp_path):
    from maggy.experiment import build_driver
    driver = build_driver(lambda lr: lr, SP, backend="local", verbose=False, num_trials=5, optimizer="TPE ",
                          direction="maximize", experiment_dir=str(tmp_path))
    assert (driver.config.num_trials, driver.config.optimizer, driver.config.direction) == (5, "tpe", "max")
    base = HyperparameterOptConfig(searchspace=SP, num_trials=3)
    driver = build_driver(lambda lr: lr, base, backend="local", verbose=False, num_trials=7,
                          experiment_dir=str(tmp_path))
    assert driver.config.num_trials == 7 and base.num_trials == 3
    with pytest.raises(InvalidParameterError, match="Did you mean 'num_trials'"):
        experiment.lagom(lambda lr: lr, SP, backend=RecordingBackend(), num_trial=5)
    with pytest.raises(InvalidParameterError, match="'tpe' .*or 'gp'"):
        HyperparameterOptConfig(searchspace=SP, optimizer="bayes")
    with pytest.raises(InvalidParameterError, match="Did you mean 'hyperband'"):
        HyperparameterOptConfig(searchspace=SP, optimizer="hyperbnd")
    with pytest.raises(InvalidParameterError, match="Did you mean 'median'"):
        HyperparameterOptConfig(searchspace=SP, es_policy="medain")
    with pytest.raises(InvalidParameterError, match="needs a searchspace"):
        experiment.lagom(lambda lr: lr, backend=RecordingBackend(), num_trials=5)
    assert HyperparameterOptConfig(searchspace=SP, direction="Minimize").direction == "min"


def test_missing_pyspark_is_reported():
    # as if PySpark were not installed
    out = _lagom_error_in_fresh_process("import sys; sys.modules['pyspark'] = None\n", {"PATH": "/usr/bin:/bin"})
    assert "ERROR: backend='spark' needs PySpark" in out


class UnavailableBackend(RecordingBackend):
    """A backend whose own preflight fails, as an unreachable Spark master does."""

    def prepare(self):
        from maggy.exceptions import BackendUnavailableError
        raise BackendUnavailableError("no cluster here")


def test_a_failed_backend_preflight_leaves_nothing_behind(tmp_path):
    import threading

    from mlflow.tracking import MlflowClient

    from maggy.exceptions import BackendUnavailableError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # the store exists, as on a real server
    threads_before = set(threading.enumerate())
    cfg = HyperparameterOptConfig(searchspace=SP, experiment_dir=str(tmp_path / "experiments"), tracking_uri=uri,
                                  name="preflight")
    with pytest.raises(BackendUnavailableError, match="no cluster here"):
        experiment.lagom(lambda lr: lr, cfg, backend=UnavailableBackend(), verbose=False)
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(experiments) == []
    assert client.get_experiment_by_name("preflight") is None
    assert not (tmp_path / "experiments").exists()
    assert not [t for t in set(threading.enumerate()) - threads_before if t.name.startswith("maggy")]


def test_deciding_that_nothing_is_tracked_does_not_import_mlflow():
    code = ("import sys, os; os.environ.pop('MLFLOW_TRACKING_URI', None);"
            "from maggy.integrations.mlflow.tracker import configured_uri; print(configured_uri(None), 'mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["None", "False"], out.stderr


def test_warnings_for_a_stopping_policy_that_cannot_act_and_a_train_fn_that_carries_data(tmp_path):
    from maggy.exceptions import MaggyWarning
    from maggy.experiment import build_driver
    with pytest.warns(MaggyWarning, match="es_policy='median' can never stop a trial: train_fn takes no 'reporter'"):
        build_driver(lambda lr: lr, SP, backend="local", verbose=False, es_policy="median",
                     experiment_dir=str(tmp_path))
    import numpy as np
    data = np.zeros(6 * 2**20 // 8)
    with pytest.warns(MaggyWarning, match=r"train_fn is 6 MB once serialised .* broadcast"):
        build_driver(lambda lr: lr + data[0], SP, backend="local", verbose=False, experiment_dir=str(tmp_path))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults, with a small train_fn: nothing to say
        build_driver(lambda lr: lr, SP, backend="local", verbose=False, experiment_dir=str(tmp_path))


def _refused(tmp_path, train_fn, sp=SP, **settings) -> str:
    """The error lagom raises, checked to come before the experiment directory or the backend."""
    with pytest.raises(InvalidParameterError) as err:
        experiment.lagom(train_fn, sp, backend=RecordingBackend(), experiment_dir=str(tmp_path / "exp"), **settings)
    assert not (tmp_path / "exp").exists()
    return str(err.value)


def test_a_budget_without_an_optimizer_that_gives_one_is_refused(tmp_path):
    def train(lr, budget):
        return lr
    message = _refused(tmp_path, train, optimizer="randomsearch")
    assert "train_fn requires 'budget', which only the multi-fidelity optimizers ['asha', 'hyperband', 'pbt'] give" \
        in message and "optimizer='randomsearch' would call it with budget=None" in message


def test_a_config_parameter_is_told_about_keyword_arguments(tmp_path):
    def train(config):
        return config["lr"]
    assert "maggy calls train_fn with one keyword argument per hyperparameter: train_fn(lr=...)" in \
        _refused(tmp_path, train)


@pytest.mark.parametrize("name, ours", [("metric", "optimization_key="), ("mode", "direction="),
                                        ("search_alg", "optimizer="), ("sampler", "optimizer="),
                                        ("scheduler", "optimizer="), ("storage", "experiment_dir="),
                                        ("n_jobs", "num_workers=")])
def test_ray_and_optuna_names_are_mapped_to_ours(tmp_path, name, ours):
    message = _refused(tmp_path, lambda lr: lr, **{name: "x"})
    assert message.startswith(f"lagom got {name!r}") and ours in message.split("Did you mean")[0]


def test_range_bounds_not_given_as_a_list_are_refused():
    with pytest.raises(InvalidParameterError, match=r"the bounds are given as two values, 0.001 and 10.0\. Give them "
                                                    r"as one list: lr=\('DOUBLE', \[0.001, 10.0\]\)"):
        Searchspace(lr=("DOUBLE", 1e-3, 10.0))


def test_a_dict_without_the_objective_fails_its_trial_naming_optimization_key(tmp_path):
    from maggy import TrialsFailedError
    from tests.helpers import ThreadBackend
    with pytest.raises(TrialsFailedError, match="train_fn returned a dict without 'metric' \\(the optimization_key\\); "
                                                "it has \\['acc'\\]. Pass optimization_key='acc' to lagom"):
        experiment.lagom(lambda lr: {"acc": lr}, SP, backend=ThreadBackend(1), experiment_dir=str(tmp_path),
                         verbose=False)


def test_a_driver_address_this_machine_cannot_listen_on_is_refused_before_anything_starts(tmp_path):
    def refused(address: str) -> str:  # after the backend's own checks (it gives the default), before any directory
        with pytest.raises(InvalidParameterError) as err:
            experiment.lagom(lambda lr: lr, SP, backend="local", experiment_dir=str(tmp_path / "exp"),
                             driver_address=address)
        assert not (tmp_path / "exp").exists()
        return str(err.value)

    # 203.0.113.7 (TEST-NET-3) is no address of this machine; a busy port is refused the same way
    assert "The driver cannot listen on 203.0.113.7:40000" in refused("203.0.113.7:40000")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        message = refused(f"127.0.0.1:{port}")
    assert f"cannot listen on 127.0.0.1:{port}" in message and f"driver_bind='0.0.0.0:{port}'" in message
