"""The entry point: ``experiment.lagom(train_fn, searchspace_or_config)``."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from typing import Any, Callable, Sequence

from maggy.ablation import AblationStudy
from maggy.callbacks import Callback
from maggy.config import HyperparameterOptConfig
from maggy.engine.backends import Backend
from maggy.engine.driver import Driver
from maggy.engine.setup import ExperimentSetup, StoredExperiment
from maggy.exceptions import InvalidParameterError
from maggy.result import Result
from maggy.search.searchspace import Searchspace

__all__ = ["build_driver", "lagom"]

#: Ray Tune's and Optuna's names for what maggy calls otherwise, with the fix.
FOREIGN = {
    "metric": " maggy names the metric optimization_key= (the key of the dict train_fn returns; default 'metric').",
    "mode": " maggy calls it direction= ('max' or 'min').",
    "search_alg": " maggy calls it optimizer= ('tpe', 'gp', 'asha', ..., or maggy.optimizers.OptunaSampler).",
    "sampler": " maggy calls it optimizer= ('tpe', 'randomsearch', ..., or maggy.optimizers.OptunaSampler(sampler)).",
    "scheduler": " maggy calls it optimizer= for ASHA and Hyperband ('asha', 'hyperband', 'pbt'), and es_policy= for "
                 "stopping rules ('median').",
    "pruner": " maggy calls it es_policy= ('median', 'asha' or 'none').",
    "storage": " maggy calls it experiment_dir= (a local path or hdfs://...).",
    "n_jobs": " maggy runs trials on the Spark executors' task slots; num_workers= caps how many run at once.",
    "num_samples": " maggy calls it num_trials=.",
    "n_trials": " maggy calls it num_trials=.",
}


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
        hint = FOREIGN.get(unknown[0]) or (f" Did you mean {close[0]!r}?" if close else "")
        raise InvalidParameterError(
            f"lagom got {unknown[0]!r}, which is neither one of its own arguments (backend, verbose, callbacks) nor a "
            f"HyperparameterOptConfig field ({', '.join(fields)}).{hint}")
    if isinstance(config, AblationStudy):
        return _ablation_config(config, settings)
    if isinstance(config, HyperparameterOptConfig):
        if not settings:
            return config
        # defaults stay defaults: chosen again for the new fields
        settings = {**({} if config.es_policy_given else {"es_policy": None}),
                    **({} if config.direction_given else {"direction": None}), **settings}
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


def build_driver(train_fn: Callable, config: HyperparameterOptConfig | Searchspace | AblationStudy | None = None, *,
                 backend: str | Backend = "spark", verbose: bool = True,
                 callbacks: Sequence[Callback] = (), **settings: Any) -> Driver | StoredExperiment:
    """Validate everything, then return the experiment's Driver, not yet started (see ``lagom``
    and :class:`~maggy.engine.setup.ExperimentSetup`)."""
    study = config if isinstance(config, AblationStudy) else None
    config = _config(config, settings)
    if study is not None:
        _check_ablation_fn(train_fn)
    return ExperimentSetup(train_fn, config, study=study, backend=backend, verbose=verbose, callbacks=callbacks).build()
