"""The entry point: ``experiment.lagom(train_fn, searchspace_or_config)``."""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import importlib.util
import inspect
import secrets
import warnings
from typing import Any, Callable, Sequence

import cloudpickle

from maggy.ablation import AblationStudy
from maggy.callbacks import Callback
from maggy.config import HyperparameterOptConfig, too_few_workers
from maggy.engine.backends import Backend, make_backend
from maggy.engine.driver import Driver
from maggy.exceptions import InvalidParameterError, MaggyWarning
from maggy.integrations.mlflow import MlflowTracker, configured_uri
from maggy.result import Result
from maggy.runtime.trainfn import inspect_train_fn
from maggy.search.searchspace import Searchspace
from maggy.store.fingerprint import fingerprint
from maggy.store.journal import Journal
from maggy.store.lease import Lease
from maggy.store.replay import find_previous, load_result
from maggy.store.resume import check_same, differences
from maggy.store.storage import as_given, storage_for
from maggy.store.warmstart import warm_observations
from maggy.ui.progress import Progress

DEFAULT_ROOT = "maggy_experiments"
#: Bytes of a serialised ``train_fn`` above which lagom warns that it carries data to every worker.
LARGE_TRAIN_FN = 4 * 2**20


def lagom(train_fn: Callable, config: HyperparameterOptConfig | Searchspace | AblationStudy | None = None, *,
          backend: str | Backend = "spark", verbose: bool = True,
          callbacks: Sequence[Callback] = (), **settings: Any) -> Result:
    """Tune ``train_fn`` over a searchspace and return the :class:`~maggy.result.Result`.

    Args:
        train_fn: called as ``train_fn(**params)``, plus ``reporter=`` and ``budget=`` when its
            signature names them; returns a number or a dict holding ``optimization_key``.
        config: a :class:`HyperparameterOptConfig`, a :class:`Searchspace` for the defaults, or
            an :class:`~maggy.ablation.AblationStudy` (one trial per feature or component left
            out, and the base trial; ``train_fn`` takes ``ablation``).
        settings: fields of :class:`HyperparameterOptConfig` (``num_trials=20``,
            ``optimizer="tpe"``, ``searchspace=`` ...): they build the config with the
            searchspace, or replace those fields of the config given.
        backend: ``"spark"`` (the active SparkSession, else a local one), ``"local"`` (worker
            processes on this machine) or a :class:`~maggy.engine.backends.Backend`.
        verbose: show live progress.
        callbacks: :class:`~maggy.callbacks.Callback` objects that watch the experiment (trial
            starts, results and ends), called after maggy's own progress, MLflow and journal.

    Everything is validated before anything has a side effect (an MLflow run, a directory, a
    thread, a Spark job). Ctrl-C cancels the workers, keeps the
    finished trials in the journal and re-raises KeyboardInterrupt.
    """
    return build_driver(train_fn, config, backend=backend, verbose=verbose, callbacks=callbacks, **settings).run()


def _check_ablation_fn(train_fn: Callable) -> None:
    """An ablation study's ``train_fn`` takes ``ablation``: what its trial leaves out."""
    try:
        takes = "ablation" in inspect.signature(train_fn).parameters
    except (TypeError, ValueError):
        return  # inspect_train_fn says why
    if not takes:
        raise InvalidParameterError(
            "An ablation study calls train_fn with 'ablation' (what the trial leaves out): add an 'ablation' parameter "
            "and use ablation.drop(data) and ablation.apply(model) in it.")


def _ablation_config(study: AblationStudy, settings: dict[str, Any]) -> HyperparameterOptConfig:
    """The experiment an ablation study is: grid search over its trials' names, no early stopping."""
    fixed = sorted({"searchspace", "optimizer", "num_trials", "points_to_evaluate", "warm_start"} & set(settings))
    if fixed:
        raise InvalidParameterError(
            f"An ablation study runs each of its trials once, so {fixed} cannot be set; the study itself says what runs.")
    settings = {"es_policy": "none", **settings}
    return HyperparameterOptConfig(searchspace=Searchspace(ablation=("CATEGORICAL", study.names())),
                                   optimizer="gridsearch", **settings)


def _config(config: HyperparameterOptConfig | Searchspace | AblationStudy | None,
            settings: dict[str, Any]) -> HyperparameterOptConfig:
    """The config a call means: the one given, with ``settings`` replacing its fields, or one
    built from the searchspace and ``settings``."""
    fields = [f.name for f in dataclasses.fields(HyperparameterOptConfig) if f.init]
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        close = difflib.get_close_matches(unknown[0], fields, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidParameterError(
            f"lagom got {unknown[0]!r}, which is neither one of its own arguments (backend, verbose, callbacks) nor a "
            f"HyperparameterOptConfig field ({', '.join(fields)}).{hint}")
    if isinstance(config, AblationStudy):
        return _ablation_config(config, settings)
    if isinstance(config, HyperparameterOptConfig):
        if not settings:
            return config
        if not config.es_policy_given:  # the default stays a default: chosen again for the new fields
            settings = {"es_policy": None, **settings}
        return dataclasses.replace(config, **settings)
    if isinstance(config, Searchspace):
        if "searchspace" in settings:
            raise InvalidParameterError("lagom got two searchspaces: pass it once, as the second argument.")
        return HyperparameterOptConfig(searchspace=config, **settings)
    if config is None and "searchspace" in settings:
        return HyperparameterOptConfig(**settings)
    raise InvalidParameterError(
        f"lagom needs a searchspace: lagom(train_fn, Searchspace(...), num_trials=20, ...) or "
        f"lagom(train_fn, HyperparameterOptConfig(searchspace=..., ...)); got {config!r} as its second argument.")


def _warm_start(config: HyperparameterOptConfig) -> list[tuple[dict[str, Any], float]]:
    """The observations of ``warm_start``, read now (before any side effect), with a warning for
    what did not fit and for an optimizer that learns nothing from them."""
    if config.warm_start is None:
        return []
    observations, notes = warm_observations(config.warm_start, config.searchspace, config.objectives.primary)
    if not config.unbound_optimizer().learns:
        warnings.warn(f"warm_start has no effect on optimizer {config.optimizer_name!r}, which does not learn from "
                      "results: use 'tpe', 'gp', an Optuna sampler, or ASHA/Hyperband with sampler='tpe'.",
                      MaggyWarning, stacklevel=4)
    elif notes or not observations:
        warnings.warn(f"warm_start gives {len(observations)} observations" + (": " + "; ".join(notes) if notes else "")
                      + ".", MaggyWarning, stacklevel=4)
    return observations


def _check_gangs(config: HyperparameterOptConfig, runner: Backend) -> None:
    """A gang needs torch here (and on the workers) and at least ``workers_per_trial`` workers;
    workers that no gang can use are worth a warning."""
    k = config.workers_per_trial
    if k == 1:
        return
    if importlib.util.find_spec("torch") is None:
        raise InvalidParameterError(
            f"workers_per_trial={k} trains each trial as a torch.distributed process group, which needs PyTorch: "
            "pip install torch (here and on the workers), or keep workers_per_trial=1.")
    workers = config.num_workers or runner.num_slots()
    source = f"num_workers={config.num_workers}" if config.num_workers else f"the {runner.name} backend's task slots"
    if workers < k:
        raise too_few_workers(workers, k, source)
    if workers % k:
        warnings.warn(f"{workers} workers ({source}) run {workers // k} gangs of workers_per_trial={k}; "
                      f"{workers % k} of them can only stand in for a lost rank. Use a multiple of {k} workers "
                      "to use them all.", MaggyWarning, stacklevel=4)


class StoredExperiment:
    """A finished experiment asked for again with no more trials: its stored result, nothing run."""

    def __init__(self, exp_dir: str, given: str | None) -> None:
        self.exp_dir, self.given = exp_dir, given

    def run(self) -> Result:
        return dataclasses.replace(load_result(self.exp_dir), experiment_dir=as_given(self.exp_dir, self.given))


def build_driver(train_fn: Callable, config: HyperparameterOptConfig | Searchspace | AblationStudy | None = None, *,
                 backend: str | Backend = "spark", verbose: bool = True,
                 callbacks: Sequence[Callback] = (), **settings: Any) -> Driver | StoredExperiment:
    """Validate everything, then return the experiment's Driver, not yet started (see ``lagom``).

    Every check runs before the first side effect: the MLflow parent run and the experiment
    directory are created only once the config, ``train_fn``, storage, the experiment to resume,
    the tracking server and the backend have all passed.
    """
    study = config if isinstance(config, AblationStudy) else None
    config = _config(config, settings)
    if study is not None:
        _check_ablation_fn(train_fn)
    signature = inspect_train_fn(train_fn, config.searchspace)
    if config.multi_fidelity and not signature.wants_budget:
        raise InvalidParameterError(
            f"The optimizer {config.optimizer_name!r} runs each trial with a growing budget; add a "
            "'budget' parameter to train_fn and train for that many epochs (or units of resource).")
    try:
        runnable = train_fn if study is None else study.bind(train_fn)  # what the workers call
        size = len(cloudpickle.dumps(runnable))
    except Exception as exc:
        raise InvalidParameterError(
            f"train_fn cannot be serialised for the workers ({type(exc).__name__}: {exc}); "
            "it probably captures an open resource (a SparkSession, a lock, a file): create it "
            "inside train_fn instead.") from None
    if size > LARGE_TRAIN_FN:
        warnings.warn(
            f"train_fn is {size / 2**20:.0f} MB once serialised (it captures data), and every worker receives it: "
            "load the data inside train_fn (from HDFS or a file), or pass it as a Spark broadcast variable "
            "(bc = spark.sparkContext.broadcast(data), then bc.value inside train_fn).", MaggyWarning, stacklevel=3)
    if config.es_policy_given and config.es_policy != "none" and not signature.wants_reporter:
        warnings.warn(
            f"es_policy={config.es_policy!r} can never stop a trial: train_fn takes no 'reporter', so it reports "
            "no metric while it runs. Add a 'reporter' parameter and call reporter.broadcast(metric, step) every "
            "epoch, or pass es_policy='none'.", MaggyWarning, stacklevel=3)
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
    previous = None if config.resume is False else find_previous(storage, root, config.name)
    if previous is None and config.resume is True:
        raise InvalidParameterError(
            f"resume=True, but {storage.join(root, config.name)} holds no experiment '{config.name}' to continue; "
            "check name and experiment_dir, or use resume='auto' to start one.")
    code = fingerprint(train_fn)
    changed: list[str] = []  # why the experiment found is not continued (resume='auto')
    fn_changed = previous is not None and previous.fingerprint not in (None, code)
    if previous is not None:
        if config.resume is True:
            check_same(previous, config)
        else:
            changed = differences(previous, config)
        if fn_changed:
            if config.resume is True:
                warnings.warn(
                    f"train_fn changed since experiment '{config.name}' in {previous.exp_dir} ran; resume=True "
                    f"continues it anyway, so its {previous.ended} finished trials ran the old code. Pass "
                    "resume='auto' to start a new experiment instead.", MaggyWarning, stacklevel=3)
            else:
                changed.insert(0, "train_fn (its code or the code it calls changed)")
        if changed:
            stale, previous = previous, None
        elif previous.finished and config.planned_trials() <= previous.total:
            warnings.warn(
                f"Experiment '{config.name}' already finished in {previous.exp_dir} ({previous.ended} trials): "
                "returning its stored result, nothing ran. Pass resume=False to run it again as a new "
                f"experiment, or num_trials > {previous.total} to add trials to it.", MaggyWarning, stacklevel=3)
            return StoredExperiment(previous.exp_dir, config.experiment_dir)
    uri = configured_uri(config.tracking_uri)
    if config.register_model and not uri:
        raise InvalidParameterError(
            f"register_model={config.register_model!r} needs MLflow tracking: set tracking_uri or "
            "MLFLOW_TRACKING_URI.")
    tracker = MlflowTracker(uri, config.name, config.optimization_key, config.register_model,
                            config.log_trials) if uri else None
    if tracker is not None:
        tracker.check()
    warm = _warm_start(config)
    runner.prepare()
    _check_gangs(config, runner)
    # every check passed: from here on, side effects
    if previous is not None:
        exp_dir = previous.exp_dir
        what = (f"it finished its {previous.total} trials, and {config.planned_trials() - previous.total} more run now"
                if previous.finished else f"{previous.ended} of its {previous.total} trials had ended and do not run "
                "again")
        warnings.warn(f"Continuing experiment '{config.name}' in {exp_dir}: {what}. Pass resume=False to start a new "
                      "experiment instead.", MaggyWarning, stacklevel=3)
    else:
        run_id = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        exp_dir = storage.join(root, config.name, run_id)
        storage.makedirs(exp_dir)
        if changed:
            warnings.warn(
                f"Experiment '{config.name}' in {stale.exp_dir} ran with a different " + ", ".join(changed) +
                f", so a new experiment starts in {exp_dir}; the old one stays where it is (maggy.load_result "
                "reads it)." + (" Pass resume=True to continue it with the new train_fn anyway."
                                if fn_changed and len(changed) == 1 else ""),
                MaggyWarning, stacklevel=3)
    lease = Lease(storage, exp_dir)
    lease.acquire()
    try:
        Journal(storage, exp_dir).repair()
        tracking = None
        if tracker is not None:
            tracking = tracker.start(config.to_dict(), resume=previous.tracking if previous is not None else None)
    except BaseException:
        lease.release()
        raise
    watchers: list[Callback] = [Progress(config.name, verbose)]
    if tracker is not None:
        watchers.append(tracker)  # before the journal: result.json then holds the MLflow run ids
    watchers += [Journal(storage, exp_dir), lease]
    return Driver(config, runnable, signature, runner, storage, exp_dir, callbacks=[*watchers, *callbacks],
                  tracking=tracking, previous=previous, fingerprint=code, warm=warm)
