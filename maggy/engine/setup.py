"""Setting an experiment up: every check, the resume decision, the lease and the trackers, then a
ready :class:`~maggy.engine.driver.Driver` for the loop.

:meth:`ExperimentSetup.build` runs every check before the first side effect: the experiment
directory, the lease, the trackers' records and the writer's thread exist only once the config,
``train_fn``, the storage, the experiment to resume, the trackers and the backend have passed.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import secrets
import warnings
from typing import Any, Callable, Sequence

import cloudpickle

from maggy.ablation import AblationStudy
from maggy.callbacks import Callback
from maggy.config import HyperparameterOptConfig, too_few_workers
from maggy.engine.backends import Backend, make_backend
from maggy.engine.driver import Driver
from maggy.engine.endpoints import check_bind, listen_at
from maggy.exceptions import InvalidParameterError, MaggyWarning, TrialsFailedError
from maggy.integrations import trackers_for
from maggy.result import Result
from maggy.runtime.trainfn import Signature, inspect_train_fn
from maggy.search.optimizers import OPTIMIZERS
from maggy.store import hdfs_auth
from maggy.store.fingerprint import fingerprint
from maggy.store.journal import Journal
from maggy.store.lease import Lease
from maggy.store.replay import ExperimentLog, find_previous, load_result
from maggy.store.resume import check_same, differences
from maggy.store.storage import Storage, as_given, storage_for
from maggy.store.warmstart import warm_observations
from maggy.store.writer import StorageWriter
from maggy.ui.progress import Progress
from maggy.ui.trial_output import TrialOutput

DEFAULT_ROOT = "maggy_experiments"
#: Bytes of a serialised ``train_fn`` above which lagom warns that it carries data to every worker.
LARGE_TRAIN_FN = 4 * 2**20
#: How far up the stack a set-up warning points: at the user's lagom call.
_USER = 5


class StoredExperiment:
    """A finished experiment asked for again with no more trials: its stored result, nothing run."""

    def __init__(self, exp_dir: str, given: str | None) -> None:
        self.exp_dir, self.given = exp_dir, given

    def run(self) -> Result:
        return dataclasses.replace(load_result(self.exp_dir), experiment_dir=as_given(self.exp_dir, self.given))


class ExperimentSetup:
    """One experiment from lagom's arguments (``config`` already built; ``study`` when it is an
    ablation study) to a Driver ready to run, or its stored result."""

    def __init__(self, train_fn: Callable, config: HyperparameterOptConfig, *, study: AblationStudy | None = None,
                 backend: str | Backend = "spark", verbose: bool = True, callbacks: Sequence[Callback] = ()) -> None:
        self.train_fn, self.config, self.study = train_fn, config, study
        self.backend, self.verbose, self.callbacks = backend, verbose, list(callbacks)

    def build(self) -> Driver | StoredExperiment:
        """Check everything, decide whether to resume, then (side effects from here) make the
        experiment directory, take the lease, open the trackers' records."""
        config = self.config
        signature, runnable = self._check_train_fn()
        self._check_arguments()
        runner = make_backend(self.backend)
        principal, keytab = (config.principal, config.keytab) if config.principal else \
            runner.kerberos_login() or (None, None)
        hdfs_auth.configure(principal, keytab, config.hdfs_ca)  # this process's HDFS login
        storage = storage_for(config.experiment_dir or DEFAULT_ROOT)
        root = storage.normalize(config.experiment_dir or DEFAULT_ROOT)
        storage.check(root)
        code = fingerprint(self.train_fn)
        previous, changed, stale = self._previous(storage, root, code)
        retried = 0
        if previous is not None:
            previous, retried = self._failed_before(previous)
        if previous is not None and previous.finished and not retried and config.planned_trials() <= previous.total:
            warnings.warn(
                f"Experiment '{config.name}' already finished in {previous.exp_dir} ({previous.ended} trials): "
                "returning its stored result, nothing ran. Pass resume=False to run it again as a new "
                f"experiment, or num_trials > {previous.total} to add trials to it.", MaggyWarning,
                stacklevel=_USER - 1)
            return StoredExperiment(previous.exp_dir, config.experiment_dir)
        trackers = trackers_for(config)
        for tracker in trackers:
            tracker.check()
        warm = self._warm_start()
        runner.prepare()
        if config.num_workers is None:
            runner.num_slots()  # a backend that cannot tell says so here, before any side effect
        check_bind(listen_at(runner.addresses, config.driver_address, config.driver_bind)[0])
        self._check_gangs(runner)
        # every check passed: from here on, side effects
        exp_dir = self._directory(storage, root, previous, changed, stale, retried)
        lease = Lease(storage, exp_dir)
        lease.acquire()
        writer = StorageWriter(storage, name=as_given(exp_dir, config.experiment_dir))
        try:
            Journal(storage, exp_dir).repair()
            resumed = previous.tracking if previous is not None else {}
            for tracker in trackers:
                tracker.start(config.to_dict(), resume=resumed.get(tracker.name))
        except BaseException:
            lease.release()
            raise
        # trackers before the journal: result.json then holds what they add (MLflow's run ids)
        output = [TrialOutput(config.name)] if self.verbose else []
        watchers: list[Callback] = [Progress(config.name, self.verbose), *output, *trackers,
                                    Journal(storage, exp_dir, writer), lease]
        return Driver(config, runnable, signature, runner, storage, exp_dir, callbacks=[*watchers, *self.callbacks],
                      trackers=trackers, previous=previous, fingerprint=code, warm=warm, writer=writer)

    # ---- checks (no side effect) ----------------------------------------------------------

    def _check_train_fn(self) -> tuple[Signature, Callable]:
        """``train_fn``'s signature, and what the workers call (serialisable, not too large)."""
        config, study = self.config, self.study
        signature = inspect_train_fn(self.train_fn, config.searchspace)
        if config.multi_fidelity and not signature.wants_budget:
            raise InvalidParameterError(
                f"The optimizer {config.optimizer_name!r} runs each trial with a growing budget; add a "
                "'budget' parameter to train_fn and train for that many epochs (or units of resource).")
        if signature.needs_budget and not config.multi_fidelity:
            givers = [n for n, cls in OPTIMIZERS.items() if cls().resumes_trials]
            raise InvalidParameterError(
                f"train_fn requires 'budget', which only the multi-fidelity optimizers {givers} give; optimizer="
                f"{config.optimizer_name!r} would call it with budget=None in every trial. Use one of them (e.g. "
                "optimizer='asha'), or give budget a default (def train_fn(..., budget=None)) and train a fixed "
                "number of epochs without one.")
        try:
            runnable = self.train_fn if study is None else study.bind(self.train_fn)
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
                "(bc = spark.sparkContext.broadcast(data), then bc.value inside train_fn).", MaggyWarning,
                stacklevel=_USER)
        self._check_early_stopping(signature)
        return signature, runnable

    def _check_early_stopping(self, signature: Signature) -> None:
        """Warn once where the stopping settings chosen can never stop a trial: no metric while
        a trial runs, or more finished trials needed than the experiment has."""
        config = self.config
        if config.es_policy_given and config.es_policy != "none" and not signature.wants_reporter:
            warnings.warn(
                f"es_policy={config.es_policy!r} can never stop a trial: train_fn takes no 'reporter', so it reports "
                "no metric while it runs. Add a 'reporter' parameter and call reporter.broadcast(metric, step) every "
                "epoch, or pass es_policy='none'.", MaggyWarning, stacklevel=_USER + 1)
        elif config.es_policy == "median" and signature.wants_reporter and config.es_min >= config.planned_trials():
            warnings.warn(
                f"es_policy='median' can never stop a trial: it acts once es_min={config.es_min} trials have finished, "
                f"and the experiment runs {config.planned_trials()} trials. Lower es_min (default 5) or raise "
                "num_trials.", MaggyWarning, stacklevel=_USER + 1)

    def _check_arguments(self) -> None:
        if not isinstance(self.verbose, bool):
            raise InvalidParameterError(f"The 'verbose' parameter must be a bool; got {self.verbose!r}.")
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise InvalidParameterError(
                    f"callbacks must be maggy.callbacks.Callback instances; got {cb!r}. Subclass Callback "
                    "and override the hooks you need (on_trial_end, ...).")

    def _previous(self, storage: Storage, root: str, code: str) -> tuple[ExperimentLog | None, list[str], ExperimentLog | None]:
        """The experiment to continue, if any; else why the one found is not continued, and it."""
        config = self.config
        previous = None if config.resume is False else find_previous(storage, root, config.name)
        if previous is None:
            if config.resume is True:
                raise InvalidParameterError(
                    f"resume=True, but {storage.join(root, config.name)} holds no experiment '{config.name}' to "
                    "continue; check name and experiment_dir, or use resume='auto' to start one.")
            return None, [], None
        fn_changed = previous.fingerprint not in (None, code)
        changed: list[str] = []
        if config.resume is True:
            check_same(previous, config)
            if fn_changed:
                warnings.warn(
                    f"train_fn changed since experiment '{config.name}' in {previous.exp_dir} ran; resume=True "
                    f"continues it anyway, so its {previous.ended} finished trials ran the old code. Pass "
                    "resume='auto' to start a new experiment instead.", MaggyWarning, stacklevel=_USER)
        else:
            changed = differences(previous, config)
            if fn_changed:
                changed.insert(0, "train_fn (its code or the code it calls changed)")
        return (None, changed, previous) if changed else (previous, [], None)

    def _failed_before(self, previous: ExperimentLog) -> tuple[ExperimentLog, int]:
        """The experiment to continue, with its failed trials to run again under ``retry_failed``
        (and how many). Without it, an experiment that its trials failed fails again here with its
        stored error: a scheduler's retry of the same job must not end in a success."""
        if self.config.retry_failed:
            return previous.retrying_failed()
        if previous.failure is not None:
            raise TrialsFailedError(
                f"{previous.failure}\n(This is the stored outcome of experiment '{self.config.name}' in "
                f"{previous.exp_dir}; nothing ran. Fix train_fn to start a new experiment, pass retry_failed=True to "
                "run its failed trials again, or resume=False to start it anew.)")
        return previous, 0

    def _warm_start(self) -> list[tuple[dict[str, Any], float]]:
        """The observations of ``warm_start``, read now, with a warning for what did not fit and
        for an optimizer that learns nothing from them."""
        config = self.config
        if config.warm_start is None:
            return []
        observations, notes = warm_observations(config.warm_start, config.searchspace, config.objectives.primary)
        if not config.unbound_optimizer().learns:
            warnings.warn(f"warm_start has no effect on optimizer {config.optimizer_name!r}, which does not learn from "
                          "results: use 'tpe', 'gp', an Optuna sampler, or ASHA/Hyperband with sampler='tpe'.",
                          MaggyWarning, stacklevel=_USER)
        elif notes or not observations:
            warnings.warn(f"warm_start gives {len(observations)} observations" + (": " + "; ".join(notes) if notes else "")
                          + ".", MaggyWarning, stacklevel=_USER)
        return observations

    def _check_gangs(self, runner: Backend) -> None:
        """A gang needs torch here (and on the workers) and at least ``workers_per_trial`` workers;
        workers that no gang can use are worth a warning."""
        config = self.config
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
                          "to use them all.", MaggyWarning, stacklevel=_USER)

    # ---- side effects ----------------------------------------------------------------------

    def _directory(self, storage: Storage, root: str, previous: ExperimentLog | None, changed: list[str],
                   stale: ExperimentLog | None, retried: int) -> str:
        """The experiment's directory: the one continued, or a new one (made now)."""
        config = self.config
        if previous is not None:
            more = config.planned_trials() - previous.total
            what = (f"it finished its {previous.total} trials" + (f", and {more} more run now" if more > 0 else "")
                    if previous.finished else
                    f"{previous.ended} of its {previous.total} trials had ended and do not run again")
            if retried:
                what += f"; its {retried} failed trials run again (retry_failed=True)"
            warnings.warn(f"Continuing experiment '{config.name}' in {previous.exp_dir}: {what}. Pass resume=False to "
                          "start a new experiment instead.", MaggyWarning, stacklevel=_USER)
            return previous.exp_dir
        run_id = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        exp_dir = storage.join(root, config.name, run_id)
        storage.makedirs(exp_dir)
        if stale is not None:
            fn_only = changed[0].startswith("train_fn") and len(changed) == 1
            warnings.warn(
                f"Experiment '{config.name}' in {stale.exp_dir} ran with a different " + ", ".join(changed) +
                f", so a new experiment starts in {exp_dir}; the old one stays where it is (maggy.load_result "
                "reads it)." + (" Pass resume=True to continue it with the new train_fn anyway." if fn_only else ""),
                MaggyWarning, stacklevel=_USER)
        return exp_dir
