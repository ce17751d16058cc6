"""Experiment configuration, validated once when constructed, before any cluster work."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from maggy.exceptions import InvalidParameterError
from maggy.search.earlystop import POLICY_NAMES, EarlyStopPolicy, make_policy
from maggy.search.objectives import Objectives
from maggy.search.optimizers import OPTIMIZERS, Optimizer
from maggy.search.searchspace import Searchspace
from maggy.store import hdfs_auth
from maggy.store.storage import storage_for
from maggy.validation import check_choice, check_int, check_number, check_str, invalid, split_address

#: Trials run when neither ``num_trials`` nor the optimizer (a finite grid) bounds them.
DEFAULT_NUM_TRIALS = 10
OPTIMIZER_ALIASES = {"random": "randomsearch", "grid": "gridsearch", "population": "pbt"}
OPTIMIZER_HINTS = {**{w: "For Bayesian optimisation use 'tpe' (Parzen estimators, any searchspace) or 'gp' "
                         "(a Gaussian process, for a few numeric parameters)."
                      for w in ("bayes", "bayesian", "bo", "bayesopt", "smac", "skopt")},
                   "bohb": "BOHB is ASHA with model-based sampling: optimizer=ASHA(sampler='tpe') "
                           "(from maggy.search.optimizers import ASHA)."}
#: Process group backends for gangs (``workers_per_trial > 1``).
DIST_BACKENDS = ("auto", "gloo", "nccl")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass
class HyperparameterOptConfig:
    """What to tune and how.

    Args:
        searchspace: the hyperparameters, a :class:`maggy.Searchspace`.
        optimizer: a name (``"randomsearch"``, ``"gridsearch"``, ``"tpe"``, ``"gp"``, ``"asha"``,
            ``"hyperband"``) or an :class:`~maggy.search.optimizers.Optimizer` instance.
        num_trials: how many trials to start; default: the whole grid for grid search, else 10.
            ASHA and Hyperband promote trials on top of these.
        direction: ``"max"`` or ``"min"``imise the metric; with several objectives a list, one
            direction per key. Default: what the key's name says where it says it (``loss``,
            ``error``, ``rmse`` ... ``"min"``; ``acc``, ``auc``, ``f1`` ... ``"max"``; see
            :meth:`~maggy.search.direction.Direction.of_metric`), else ``"max"``.
        optimization_key: the key of the metric when ``train_fn`` returns a dict; a list of keys
            optimises several metrics at once (``train_fn`` returns a dict with each): the result
            is the Pareto front (``result.pareto_front``), not one best trial.
        es_policy: early stopping, ``"median"``, ``"asha"``, ``"none"`` or an
            :class:`~maggy.search.earlystop.EarlyStopPolicy`; default ``"median"``, or ``"none"`` with
            ASHA and Hyperband, which stop trials themselves.
        es_interval: seconds between early-stopping checks.
        es_min: finished trials needed before the median rule acts (default 5, as Optuna's
            ``MedianPruner``: it acts within the default 10 trials).
        hb_interval: seconds between a worker's heartbeats.
        hb_timeout: seconds a worker running a trial may stay silent before it counts as lost
            (stale: a hung process, a network partition); default ``max(10 * hb_interval, 10)``.
        trial_timeout: seconds a trial may run before it is stopped and marked ERROR; default none.
        max_trial_retries: how often a trial whose worker was lost runs again before it is ERROR.
        worker_timeout: seconds the experiment waits with no worker able to run (all tasks failed,
            no executor granted) before it fails; finished trials are kept for a resume.
        timeout: seconds for the whole ``lagom`` call: then no trial starts, running ones are
            stopped through their heartbeat (EARLY_STOPPED), and the result is returned; the same
            call again continues the experiment for another ``timeout``. Default: none.
        target: stop once a trial's metric reaches this value (``>=`` for ``"max"``).
        patience: stop after this many finished trials in a row without a better metric.
        fail_fast: when the first this-many trials all fail with the same error, stop and raise
            :class:`~maggy.exceptions.TrialsFailedError` with that error and its traceback (a bug
            in ``train_fn``); ``0`` lets every trial run. Default 3.
        num_workers: parallel workers; default: the task slots of the backend.
        name: the experiment's name (letters, digits, ``_ . -``).
        description: free text kept with the results.
        experiment_dir: root of the experiment directories; default ``./maggy_experiments``.
            On HDFS: ``hdfs://nameservice/path`` (an HA cluster, from ``$HADOOP_CONF_DIR``),
            ``hdfs://namenode:port/path``, ``webhdfs://`` or ``swebhdfs://`` (HTTPS); see the
            user guide's "On a secure cluster".
        principal: the Kerberos principal to act as on a secure HDFS, with ``keytab``; default:
            the ticket cache of ``kinit``. The executors never see either: they get a
            delegation token from the driver.
        keytab: the keytab file of ``principal``.
        hdfs_ca: a PEM file of the CA certificates that signed the NameNodes' HTTPS
            certificates (``swebhdfs://``, ``dfs.http.policy=HTTPS_ONLY``); default
            ``$MAGGY_WEBHDFS_CA``, else the system's CAs.
        seed: seeds the optimizer, for reproducible suggestions.
        tracking_uri: the MLflow tracking server; default ``$MLFLOW_TRACKING_URI`` or the URI set
            with ``mlflow.set_tracking_uri``; without any, nothing is tracked.
        register_model: register the model that the best trial logged as a new version of this
            registered model and point its ``champion`` alias at it (needs MLflow tracking).
        log_trials: which trials get an MLflow run of their own: ``"all"`` (default; each is
            named ``<name>-<n>``), ``"best"`` (one run, for the best trial, made at the end) or
            ``"none"``; the parent run always holds the trial table and the plots.
        tensorboard: also write TensorBoard event files under the experiment directory
            (``<experiment dir>/tensorboard``): one run per trial, named ``<name>-<n>``, with the
            objective at every reported step, and the HParams table of every trial's parameters
            and result (``tensorboard --logdir <experiment dir>/tensorboard``).
        resume: what to do when ``experiment_dir`` already holds an experiment of this ``name``:
            ``"auto"`` (default) continues it if it did not finish, runs only the missing trials
            if ``num_trials`` grew, and returns its stored result if it finished them all;
            ``True`` does the same but fails when there is nothing to continue; ``False``
            always starts a new experiment beside it. Under ``"auto"`` an experiment whose
            ``train_fn`` code, searchspace, optimizer, direction or ``optimization_key`` changed
            is not continued: a new one starts beside it, with a warning; ``True`` continues it
            despite a changed ``train_fn``.
        retry_failed: when the experiment a call continues ended failed by its trials (``fail_fast``, or
            no trial succeeded), run its failed trials again; without it, the same call raises
            that stored error again (a scheduler's retry of a job does not turn a failure into a
            success). Also runs the ERROR trials of a finished experiment again. Default False.
        system_metrics: sample each trial's CPU and memory use and, with pynvml, its GPUs'
            utilisation and memory at every heartbeat: MLflow's ``system/...`` metrics of its run
            and the means ``cpu_util``, ``mem``, ``gpu_util``, ``gpu_mem`` in the trial table.
            Default: on where a worker sees an NVIDIA GPU.
        tls: encrypt the control channel between the driver and the workers (hyperparameters,
            metrics, log lines) with TLS 1.3 under a certificate made for the experiment, which
            the workers pin (see the user guide's "Security model"). Default (``None``): on where
            Spark encrypts its own traffic (``spark.network.crypto.enabled=true``) and where the
            workers get a secure HDFS's delegation token through the channel, else off, as
            TLS costs trivial trials more than a tenth of their turnover.
        driver_address: where the workers reach the driver, ``"host"`` or ``"host:port"``: an
            address of this machine that the executors can reach, when the backend's own is not
            (a Spark Connect client away from the cluster, a container, a NAT). Default: the
            backend's (loopback in local mode, else Spark's ``spark.driver.host``; under Connect
            with the server on another host, this machine's address on the route to it) and any
            free port.
        driver_bind: where the driver listens, ``"host"`` or ``"host:port"``, when it differs from
            ``driver_address`` (``"0.0.0.0:40000"`` behind a forwarded port). Default: the
            advertised host and port.
        workers_per_trial: workers that train each trial together, as one ``torch.distributed``
            process group (distributed data-parallel; see the user guide's "Gangs"). Each of them
            gets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` ... as ``torchrun`` sets
            them, with the default process group initialised. Default 1: one worker per trial.
        dist_backend: the process group's backend for ``workers_per_trial > 1``: ``"auto"``
            (``"nccl"`` where CUDA is visible, else ``"gloo"``), ``"gloo"`` or ``"nccl"``.
        dist_timeout: seconds a rank waits for its peers (joining the group, in a collective)
            before its run fails: the bound on what a hung or silent peer can cost.
        points_to_evaluate: points (dicts of every hyperparameter) to run first, exactly as
            given, before the optimizer proposes any; they count towards ``num_trials``.
        warm_start: what is already known: a :class:`~maggy.result.Result`, an experiment
            directory (local or ``hdfs://``) or a pandas DataFrame of parameters and the metric.
            Its finished trials are observations for the model-based optimizers (TPE, GP, Optuna
            samplers, ASHA and Hyperband with ``sampler="tpe"``), so the first new trials are
            already model-based; a searchspace that differs gives its overlapping dimensions.
    """

    searchspace: Searchspace
    optimizer: str | Optimizer = "randomsearch"
    num_trials: int | None = None
    direction: str | list[str] | None = None
    optimization_key: str | list[str] = "metric"
    es_policy: str | EarlyStopPolicy | None = None
    es_interval: float = 1.0
    es_min: int = 5
    hb_interval: float = 1.0
    hb_timeout: float | None = None
    trial_timeout: float | None = None
    max_trial_retries: int = 2
    worker_timeout: float = 300.0
    timeout: float | None = None
    target: float | None = None
    patience: int | None = None
    fail_fast: int = 3
    num_workers: int | None = None
    name: str = "maggy"
    description: str = ""
    experiment_dir: str | None = None
    principal: str | None = None
    keytab: str | None = None
    hdfs_ca: str | None = None
    seed: int | None = None
    tracking_uri: str | None = None
    register_model: str | None = None
    log_trials: str = "all"
    tensorboard: bool = False
    resume: bool | str = "auto"
    retry_failed: bool = False
    system_metrics: bool | None = None
    tls: bool | None = None
    driver_address: str | None = None
    driver_bind: str | None = None
    workers_per_trial: int = 1
    dist_backend: str = "auto"
    dist_timeout: float = 300.0
    points_to_evaluate: list[dict[str, Any]] | None = None
    warm_start: Any = None
    _optimizer_name: str = field(init=False, repr=False, default="")
    _objectives: Objectives = field(init=False, repr=False)
    #: Whether the user chose ``es_policy`` (lagom warns when that choice can never act).
    es_policy_given: bool = field(init=False, repr=False, default=False)
    #: Whether the user chose ``direction`` (else it follows ``optimization_key``'s name).
    direction_given: bool = field(init=False, repr=False, default=False)

    def __post_init__(self) -> None:
        if not isinstance(self.searchspace, Searchspace):
            raise invalid("searchspace", self.searchspace, "a maggy.Searchspace",
                       "Build one with Searchspace(name=('DOUBLE', [low, high]), ...).")
        if len(self.searchspace) == 0:
            raise InvalidParameterError(
                "The searchspace is empty; add at least one hyperparameter with Searchspace(name=(TYPE, values)).")
        if isinstance(self.optimizer, Optimizer):
            self._optimizer_name = type(self.optimizer).__name__
        else:
            self._optimizer_name = check_choice("optimizer", self.optimizer, OPTIMIZERS, OPTIMIZER_ALIASES,
                                                OPTIMIZER_HINTS)
            self.optimizer = self._optimizer_name
        self.num_trials = check_int("num_trials", self.num_trials, low=1, allow_none=True)
        self.direction_given = self.direction is not None
        self._objectives = Objectives.of(self.optimization_key, self.direction)  # None: as the key's name says
        self.optimization_key, self.direction = (list(self._objectives.keys), [str(d) for d in self._objectives.directions]) \
            if self._objectives.multi else (self._objectives.keys[0], self._objectives.directions[0])
        self.es_policy_given = self.es_policy is not None
        if self.es_policy is None:
            self.es_policy = "none" if self.multi_fidelity or self._objectives.multi else "median"
        elif not isinstance(self.es_policy, EarlyStopPolicy):
            self.es_policy = check_choice("es_policy", self.es_policy, POLICY_NAMES, {"off": "none"})
        self.es_interval = check_number("es_interval", self.es_interval, low=0, strict=True)
        self.es_min = check_int("es_min", self.es_min, low=1)
        self.hb_interval = check_number("hb_interval", self.hb_interval, low=0, strict=True)
        self.hb_timeout = (max(10 * self.hb_interval, 10.0) if self.hb_timeout is None
                           else check_number("hb_timeout", self.hb_timeout, low=self.hb_interval, strict=True))
        if self.trial_timeout is not None:
            self.trial_timeout = check_number("trial_timeout", self.trial_timeout, low=0, strict=True)
        self.max_trial_retries = check_int("max_trial_retries", self.max_trial_retries, low=0)
        self.worker_timeout = check_number("worker_timeout", self.worker_timeout, low=0, strict=True)
        if self.timeout is not None:
            self.timeout = check_number("timeout", self.timeout, low=0, strict=True)
        if self.target is not None:
            self.target = check_number("target", self.target)
        self.patience = check_int("patience", self.patience, low=1, allow_none=True)
        self.fail_fast = check_int("fail_fast", self.fail_fast, low=0)
        self.num_workers = check_int("num_workers", self.num_workers, low=1, allow_none=True)
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise invalid("name", self.name, "1-128 letters, digits, '_', '.' or '-', starting with a letter or digit",
                       "It names the experiment directory, so e.g. name='mnist-lr'.")
        self.description = check_str("description", self.description, allow_empty=True)
        for key in ("principal", "keytab", "hdfs_ca"):
            if getattr(self, key) is not None:
                check_str(key, getattr(self, key))
        hdfs_auth.check(self.principal, self.keytab, self.hdfs_ca)
        if self.experiment_dir is not None:
            storage_for(check_str("experiment_dir", self.experiment_dir))
        self.seed = check_int("seed", self.seed, low=0, allow_none=True)
        if self.tracking_uri is not None:
            check_str("tracking_uri", self.tracking_uri)
        self.log_trials = check_choice("log_trials", self.log_trials, ("all", "best", "none"))
        if not isinstance(self.tensorboard, bool):
            raise invalid("tensorboard", self.tensorboard, "True or False", "pass tensorboard=True to write event files")
        if self.register_model is not None:
            check_str("register_model", self.register_model)
            if self.log_trials != "all":
                raise invalid("log_trials", self.log_trials, "'all' when register_model is set",
                              "The model to register is the one the best trial logged in its own run.")
        if self.system_metrics not in (None, True, False) or isinstance(self.system_metrics, int) and \
                not isinstance(self.system_metrics, bool):
            raise invalid("system_metrics", self.system_metrics, "True, False or None",
                          "None samples them where a worker sees an NVIDIA GPU.")
        if self.tls is not None and not isinstance(self.tls, bool):
            raise invalid("tls", self.tls, "True, False or None",
                          "None (the default) turns TLS on where spark.network.crypto.enabled is true.")
        for key in ("driver_address", "driver_bind"):
            if getattr(self, key) is not None:
                split_address(key, getattr(self, key))
        self.workers_per_trial = check_int("workers_per_trial", self.workers_per_trial, low=1)
        self.dist_backend = check_choice("dist_backend", self.dist_backend, DIST_BACKENDS)
        self.dist_timeout = check_number("dist_timeout", self.dist_timeout, low=0, strict=True)
        if self.num_workers is not None and self.num_workers < self.workers_per_trial:
            raise too_few_workers(self.num_workers, self.workers_per_trial, f"num_workers={self.num_workers}")
        self._check_points()
        self._check_warm_start()
        self._check_objectives()
        if not isinstance(self.retry_failed, bool):
            raise invalid("retry_failed", self.retry_failed, "True or False",
                          "retry_failed=True runs the failed trials of the experiment continued again.")
        if self.resume not in ("auto", True, False) or isinstance(self.resume, int) and not isinstance(self.resume, bool):
            raise invalid("resume", self.resume, "'auto', True or False",
                          "resume='auto' continues an unfinished experiment of the same name and directory.")

    def _check_objectives(self) -> None:
        """What cannot work with several objectives, said at the door."""
        o = self._objectives
        if not o.multi:
            return
        why = f"there are {len(o.keys)} objectives ({o.describe()})"
        if not self.unbound_optimizer().multi_objective:
            able = [n for n, cls in OPTIMIZERS.items() if cls.multi_objective]
            raise InvalidParameterError(
                f"optimizer {self.optimizer_name!r} optimises one objective, but {why}. Use one of {able}, an "
                "OptunaSampler (e.g. of optuna.samplers.NSGAIISampler), or a single optimization_key.")
        if self.es_policy != "none":
            raise InvalidParameterError(
                f"es_policy={self.es_policy if isinstance(self.es_policy, str) else type(self.es_policy).__name__!r} "
                f"compares trials by one metric, but {why}: leave es_policy unset (or 'none'), or use "
                "optimizer='asha' or 'hyperband', which stop trials by non-dominated sorting.")
        single = {"target": "stops at a metric value", "patience": "counts trials without a better metric",
                  "register_model": "registers the best trial's model", "warm_start": "reads one metric"}
        for param, what in single.items():
            if getattr(self, param) is not None:
                fix = ("register a model of a trial on result.pareto_front with mlflow.register_model"
                       if param == "register_model" else f"leave {param} unset, or use a single optimization_key")
                raise InvalidParameterError(f"{param} {what}, but {why}: {fix}.")

    @property
    def objectives(self) -> Objectives:
        """The metrics optimised and their directions."""
        return self._objectives

    def _check_points(self) -> None:
        """Every point to evaluate first names each hyperparameter active in it once, with a value within it."""
        if self.points_to_evaluate is None:
            return
        if not isinstance(self.points_to_evaluate, (list, tuple)) or \
                not all(isinstance(p, dict) for p in self.points_to_evaluate):
            raise invalid("points_to_evaluate", self.points_to_evaluate, "a list of dicts",
                          "e.g. points_to_evaluate=[{'lr': 0.01, 'layers': 2}].")
        if self.optimizer_name == "gridsearch":
            raise InvalidParameterError(
                "points_to_evaluate cannot be combined with gridsearch, which runs its grid as it is; "
                "use optimizer='randomsearch' or a model-based optimizer, or add the points to the grid's values.")
        sp = self.searchspace
        for i, point in enumerate(self.points_to_evaluate):
            what = sp.mismatch(point)
            if what:
                raise InvalidParameterError(
                    f"points_to_evaluate[{i}] = {point!r} does not fit the searchspace: {'; '.join(what)}. Each point "
                    f"gives a value within the searchspace for each of {sp.names} that is active in it.")
        planned = self.planned_trials()
        if len(self.points_to_evaluate) > planned:
            raise InvalidParameterError(
                f"points_to_evaluate holds {len(self.points_to_evaluate)} points, more than the {planned} trials the "
                f"experiment runs: raise num_trials to at least {len(self.points_to_evaluate)}.")

    def _check_warm_start(self) -> None:
        """The kind of ``warm_start``; what it holds is read in lagom's preflight."""
        if self.warm_start is None:
            return
        import pandas as pd

        from maggy.result import Result

        if not isinstance(self.warm_start, (str, Result, pd.DataFrame)):
            raise invalid("warm_start", self.warm_start, "a maggy Result, an experiment directory or a pandas DataFrame",
                          "e.g. warm_start=earlier_result or warm_start='hdfs:///experiments/mnist'.")

    @property
    def optimizer_name(self) -> str:
        return self._optimizer_name

    @property
    def multi_fidelity(self) -> bool:
        """Whether the optimizer runs trials with growing budgets (ASHA, Hyperband)."""
        return self.unbound_optimizer().resumes_trials

    def make_optimizer(self) -> Optimizer:
        """The optimizer set up for this experiment (the instance given, or a new one by name)."""
        opt = self.unbound_optimizer()
        opt.setup(self.searchspace, direction=[str(d) for d in self._objectives.directions], seed=self.seed,
                  num_trials=self.total_trials(opt))
        return opt

    def unbound_optimizer(self) -> Optimizer:
        """The optimizer this config names, not yet set up: the instance given, or a new one."""
        return self.optimizer if isinstance(self.optimizer, Optimizer) else OPTIMIZERS[self.optimizer]()

    def make_policy(self) -> EarlyStopPolicy:
        if isinstance(self.es_policy, EarlyStopPolicy):
            return self.es_policy
        return make_policy(str(self.es_policy), self.es_min)

    def planned_trials(self) -> int:
        """:meth:`total_trials` for the optimizer this config names, without setting it up."""
        return self.total_trials(self.unbound_optimizer())

    def total_trials(self, optimizer: Optimizer) -> int:
        """Trials to run: ``num_trials`` capped by what the optimizer can propose."""
        cap = optimizer.max_trials(self.searchspace)
        if self.num_trials is None:
            return cap if cap is not None else DEFAULT_NUM_TRIALS
        return self.num_trials if cap is None else min(self.num_trials, cap)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, as kept in the journal and result.json."""
        return {
            "name": self.name, "description": self.description,
            "searchspace": self.searchspace.to_dict(), "optimizer": self.optimizer_name,
            "num_trials": self.num_trials, **self._objectives.config(),
            "es_policy": self.es_policy if isinstance(self.es_policy, str) else type(self.es_policy).__name__,
            "es_interval": self.es_interval, "es_min": self.es_min, "hb_interval": self.hb_interval,
            "hb_timeout": self.hb_timeout, "trial_timeout": self.trial_timeout,
            "max_trial_retries": self.max_trial_retries, "worker_timeout": self.worker_timeout,
            "timeout": self.timeout, "target": self.target, "patience": self.patience, "fail_fast": self.fail_fast,
            "num_workers": self.num_workers, "experiment_dir": self.experiment_dir, "seed": self.seed,
            "tracking_uri": self.tracking_uri, "register_model": self.register_model, "log_trials": self.log_trials,
            "tensorboard": self.tensorboard, "resume": self.resume,
            "retry_failed": self.retry_failed, "system_metrics": self.system_metrics, "tls": self.tls,
            "driver_address": self.driver_address, "driver_bind": self.driver_bind,
            "workers_per_trial": self.workers_per_trial, "dist_backend": self.dist_backend,
            "dist_timeout": self.dist_timeout, "points_to_evaluate": self.points_to_evaluate,
            "warm_start": _describe(self.warm_start),
        }


def too_few_workers(workers: int, per_trial: int, source: str) -> InvalidParameterError:
    """The error for fewer workers than one gang needs: it names both numbers and the fix."""
    return InvalidParameterError(
        f"workers_per_trial={per_trial} needs at least {per_trial} workers, but there are only {workers} ({source}): "
        f"lower workers_per_trial, or give the experiment more workers (num_workers, executors or task slots).")


def _describe(source: Any) -> str | None:
    """A warm start as the journal keeps it: its path, its experiment's directory, or its size."""
    if source is None or isinstance(source, str):
        return source
    if hasattr(source, "experiment_dir"):
        return str(source.experiment_dir)
    return f"a DataFrame of {len(source)} rows"
