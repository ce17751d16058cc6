"""The entry point: ``experiment.lagom(train_fn, searchspace_or_config)``."""

from __future__ import annotations

import datetime
import secrets
from typing import Callable, Sequence

import cloudpickle

from maggy.backends import Backend, make_backend
from maggy.callbacks import Callback
from maggy.config import HyperparameterOptConfig
from maggy.driver import Driver
from maggy.exceptions import InvalidParameterError
from maggy.journal import Journal
from maggy.progress import Progress
from maggy.result import Result
from maggy.searchspace import Searchspace
from maggy.storage import storage_for
from maggy.tracking import MlflowTracker, configured_uri
from maggy.trainfn import inspect_train_fn

DEFAULT_ROOT = "maggy_experiments"


def lagom(train_fn: Callable, config: HyperparameterOptConfig | Searchspace, *,
          backend: str | Backend = "spark", verbose: bool = True,
          callbacks: Sequence[Callback] = ()) -> Result:
    """Tune ``train_fn`` over a searchspace and return the :class:`~maggy.result.Result`.

    Args:
        train_fn: called as ``train_fn(**params)``, plus ``reporter=`` and ``budget=`` when its
            signature names them; returns a number or a dict holding ``optimization_key``.
        config: a :class:`HyperparameterOptConfig`, or a :class:`Searchspace` for the defaults.
        backend: ``"spark"`` (the active SparkSession, else a local one), ``"local"`` (worker
            processes on this machine) or a :class:`~maggy.backends.Backend`.
        verbose: show live progress.
        callbacks: :class:`~maggy.callbacks.Callback` objects that watch the experiment (trial
            starts, results and ends), called after maggy's own progress, MLflow and journal.

    Everything is validated before anything has a side effect (an MLflow run, a directory, a
    thread, a Spark job). Ctrl-C cancels the workers, keeps the
    finished trials in the journal and re-raises KeyboardInterrupt.
    """
    return build_driver(train_fn, config, backend=backend, verbose=verbose, callbacks=callbacks).run()


def build_driver(train_fn: Callable, config: HyperparameterOptConfig | Searchspace, *,
                 backend: str | Backend = "spark", verbose: bool = True,
                 callbacks: Sequence[Callback] = ()) -> Driver:
    """Validate everything, then return the experiment's Driver, not yet started (see ``lagom``).

    Every check runs before the first side effect: the MLflow parent run and the experiment
    directory are created only once the config, ``train_fn``, storage, tracking server and
    backend have all passed.
    """
    if isinstance(config, Searchspace):
        config = HyperparameterOptConfig(searchspace=config)
    elif not isinstance(config, HyperparameterOptConfig):
        raise InvalidParameterError(
            f"lagom's second argument must be a Searchspace or a HyperparameterOptConfig; got {config!r}.")
    signature = inspect_train_fn(train_fn, config.searchspace)
    if config.multi_fidelity and not signature.wants_budget:
        raise InvalidParameterError(
            f"The optimizer {config.optimizer_name!r} runs each trial with a growing budget; add a "
            "'budget' parameter to train_fn and train for that many epochs (or units of resource).")
    try:
        cloudpickle.dumps(train_fn)
    except Exception as exc:
        raise InvalidParameterError(
            f"train_fn cannot be serialised for the workers ({type(exc).__name__}: {exc}); "
            "it probably captures an open resource (a SparkSession, a lock, a file): create it "
            "inside train_fn instead.") from None
    if not isinstance(verbose, bool):
        raise InvalidParameterError(f"The 'verbose' parameter must be a bool; got {verbose!r}.")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise InvalidParameterError(
                f"callbacks must be maggy.callbacks.Callback instances; got {cb!r}. Subclass Callback "
                "and override the hooks you need (on_trial_end, ...).")
    runner = make_backend(backend)
    storage = storage_for(config.experiment_dir or DEFAULT_ROOT)
    root = storage.normalize(config.experiment_dir or DEFAULT_ROOT)
    storage.check(root)
    uri = configured_uri(config.tracking_uri)
    if config.register_model and not uri:
        raise InvalidParameterError(
            f"register_model={config.register_model!r} needs MLflow tracking: set tracking_uri or "
            "MLFLOW_TRACKING_URI.")
    tracker = MlflowTracker(uri, config.name, config.optimization_key, config.register_model) if uri else None
    if tracker is not None:
        tracker.check()
    runner.prepare()
    # every check passed: from here on, side effects
    run_id = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    exp_dir = storage.join(root, config.name, run_id)
    storage.makedirs(exp_dir)
    tracking = tracker.start(config.to_dict()) if tracker is not None else None
    watchers: list[Callback] = [Progress(config.name, verbose)]
    if tracker is not None:
        watchers.append(tracker)  # before the journal: result.json then holds the MLflow run ids
    watchers.append(Journal(storage, exp_dir))
    return Driver(config, train_fn, signature, runner, storage, exp_dir,
                  callbacks=[*watchers, *callbacks], tracking=tracking)
