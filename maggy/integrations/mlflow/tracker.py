"""MLflow tracking: a parent run per experiment and a nested run per trial.

The driver never waits on MLflow while answering a worker: :class:`MlflowTracker` queues what
to log and one thread of its own sends it, in batches, retrying while the server is away, so
an outage slows or loses no trial; what could not be delivered by the end is counted and
reported. Workers open their trial's run themselves (see :mod:`maggy.integrations.mlflow.worker`) so that plain
``mlflow.log_metric`` or ``mlflow.<flavor>.log_model`` calls inside ``train_fn`` land in it; the
run id comes back with the trial's metrics. The tracker is a :class:`~maggy.integrations.tracker.Tracker`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from maggy.ablation.table import is_ablation
from maggy.exceptions import BackendUnavailableError, InvalidParameterError
from maggy.integrations.mlflow.worker import MlflowTrialTracking, client_for, create_trial_run, fast_fail
from maggy.integrations.tracker import Tracker
from maggy.search.objectives import Objectives
from maggy.trial import FrozenTrial, TrialState, run_name

if TYPE_CHECKING:
    from maggy.config import HyperparameterOptConfig
    from maggy.result import Result

log = logging.getLogger(__name__)

_STATUS = {TrialState.FINALIZED: "FINISHED", TrialState.PAUSED: "FINISHED",
           TrialState.EARLY_STOPPED: "KILLED", TrialState.ERROR: "FAILED"}
#: A trial's system metrics (maggy.runtime.usage) by their names in MLflow.
SYSTEM_METRICS = {"cpu_util": "system/cpu_utilization_percentage", "mem": "system/memory_usage_megabytes",
                  "gpu_util": "system/gpu_utilization_percentage", "gpu_mem": "system/gpu_memory_usage_megabytes"}
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch


def configured_uri(explicit: str | None) -> str | None:
    """The tracking URI to use: the config's, else $MLFLOW_TRACKING_URI, else one set in mlflow.

    MLflow is imported only when it already is: a URI set with ``mlflow.set_tracking_uri``
    needs mlflow imported, and importing it just to learn that nothing is set costs a second.
    """
    if explicit:
        return explicit
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if "mlflow" not in sys.modules:
        return None
    import mlflow
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    return mlflow.get_tracking_uri() if is_tracking_uri_set() else None


def configured(config: "HyperparameterOptConfig") -> "MlflowTracker | None":
    """The MLflow tracker when a tracking URI is set (see :func:`configured_uri`)."""
    uri = configured_uri(config.tracking_uri)
    if config.register_model and not uri:
        raise InvalidParameterError(
            f"register_model={config.register_model!r} needs MLflow tracking: set tracking_uri or "
            "MLFLOW_TRACKING_URI.")
    if not uri:
        return None
    return MlflowTracker(uri, config.name, config.optimization_key, config.register_model, config.log_trials)


class MlflowTracker(Tracker):
    """Logs an experiment to MLflow from a thread of its own; see the module docstring.

    ``check()`` is the preflight (no side effect), ``start()`` opens the parent run; the rest
    are callback hooks that never block the driver, but the experiment's end, which waits for
    the queue to drain and hands the best model to the registry.
    """

    name = "mlflow"

    def __init__(self, uri: str, experiment_name: str, optimization_key: str | Sequence[str] = "metric",
                 register_model: str | None = None, log_trials: str = "all") -> None:
        self.uri = uri
        self.experiment_name = experiment_name
        #: Every objective's key; the first names the metric a trial reports as it runs.
        self.keys = [optimization_key] if isinstance(optimization_key, str) else list(optimization_key)
        self.optimization_key = self.keys[0]
        self.register_model = register_model
        self.log_trials = log_trials
        self._queue: collections.deque[_Send] = collections.deque()
        self._wake = threading.Condition()
        self._closing = False
        self._deadline = self._patience = 0.0  # at the end: when to give up, and how long without a delivery
        self._thread = threading.Thread(target=self._run, name="maggy-mlflow", daemon=True)
        self.delivered = 0
        #: Sends that delivered them: what queued for one run while the last send was out goes as one.
        self.sends = 0
        self.lost: list[str] = []
        self.retries = 0
        self._runs: dict[str, str] = {}  # trial id -> run id
        self._paused: dict[str, int] = {}  # trial id -> steps when its run ended PAUSED
        self._early: dict[str, list] = {}  # trial id -> system metrics sampled before its run was known
        self._latest: dict[str, tuple[int, int, float]] = {}  # trial id -> (step, ms, value) last under the key

    # ---- set-up (synchronous) ------------------------------------------------------------------

    def check(self) -> None:
        """The preflight: MLflow is installed and the server answers; raises
        BackendUnavailableError naming the server if not. Creates nothing."""
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise BackendUnavailableError(
                f"MLflow tracking is configured ({self.uri}) but mlflow is not installed: "
                "pip install mlflow, or unset MLFLOW_TRACKING_URI.") from None
        try:
            with fast_fail():
                self._client = client_for(self.uri)
                self._client.get_experiment_by_name(self.experiment_name)
        except Exception as exc:
            raise BackendUnavailableError(
                f"Cannot reach the MLflow tracking server at {self.uri}: {type(exc).__name__}: "
                f"{str(exc)[:300]}. Start it, fix MLFLOW_TRACKING_URI / tracking_uri, or unset it "
                "to run without tracking.") from None

    def start(self, params: Mapping[str, Any], resume: Mapping[str, Any] | None = None) -> None:
        """Open the parent run (after :meth:`check`) and the sending thread; ``resume`` (the
        :meth:`state` of an earlier run of this experiment) re-opens its parent run."""
        with fast_fail():
            if resume is not None and resume.get("uri") == self.uri:
                reopen = True
                exp_id, parent_id = resume["experiment_id"], resume["parent_run_id"]
                self._client.update_run(parent_id, status="RUNNING")
            else:
                reopen = False
                exp = self._client.get_experiment_by_name(self.experiment_name)
                exp_id = exp.experiment_id if exp else self._client.create_experiment(self.experiment_name, tags=_KIND)
                if exp is not None and _KIND_TAG not in exp.tags:  # one MLflow made, or an older maggy
                    self._client.set_experiment_tag(exp_id, _KIND_TAG, _KIND[_KIND_TAG])
                parent_id = self._client.create_run(exp_id, run_name=params.get("name"), tags={
                    "maggy.role": "experiment", "mlflow.note.content": describe(params)}).info.run_id
        self.experiment_id, self.parent_run_id = exp_id, parent_id
        if not reopen:  # MLflow params are immutable: a re-opened run keeps its first ones; unset ones are left out
            given = {k: v for k, v in params.items() if v is not None and v != "" and v != [] and v != {}}
            self._send(_Send("parent params", "", lambda: self.parent_run_id, params=_flat(given)))
        self._spec = MlflowTrialTracking(self.uri, exp_id, self.parent_run_id, self.log_trials)
        self._thread.start()

    def state(self) -> Mapping[str, Any]:
        return dataclasses.asdict(self._spec)

    def worker(self) -> MlflowTrialTracking:
        return self._spec

    # ---- callback hooks (never block) ----------------------------------------------------------

    def on_trial_result(self, trial: FrozenTrial, points) -> None:
        """Step metrics of a trial whose worker opened its run (else they go with its end)."""
        self._bind(trial)
        if trial.trial_id not in self._runs:
            return
        now = int(time.time() * 1000)
        batch = [(self.optimization_key, float(v), now, int(s)) for s, v in points]
        self._keep_latest(trial.trial_id, batch)
        if batch:
            self._send(_Send("metrics", trial.trial_id, lambda: self._run_of(trial), metrics=batch))

    def on_system_metrics(self, trial: FrozenTrial, sample) -> None:
        """A sample of the trial's system metrics, under MLflow's own ``system/`` names, the
        sample's number as the step (as MLflow's system metrics monitor logs them)."""
        if self.log_trials != "all":
            return
        now, step = int(time.time() * 1000), int(trial.usage.get("samples", 1)) - 1
        self._early.setdefault(trial.trial_id, []).extend(
            (SYSTEM_METRICS[k], float(v), now, step) for k, v in sample.items() if k in SYSTEM_METRICS)
        self._bind(trial)
        if trial.trial_id in self._runs:  # else kept until the worker's run is known
            batch = self._early.pop(trial.trial_id)
            self._send(_Send("system metrics", trial.trial_id, lambda: self._run_of(trial), metrics=batch))

    def _keep_latest(self, trial_id: str, points: list) -> None:
        """The point under the key that MLflow takes for the run's value: the greatest (step, time)."""
        for _, value, ms, step in points:
            if trial_id not in self._latest or (step, ms) >= self._latest[trial_id][:2]:
                self._latest[trial_id] = (step, ms, value)

    def _bind(self, trial: FrozenTrial) -> None:
        """The run a worker opened for ``trial``."""
        run_id = trial.run_id
        if run_id and trial.trial_id not in self._runs:
            self._runs[trial.trial_id] = run_id
            self._send(_Send("trial params", trial.trial_id, lambda: run_id, params=_flat(trial.params)))

    def on_trial_end(self, trial: FrozenTrial) -> None:
        if self.log_trials != "all":  # the parent run gets the trial table at the end
            return
        if self._paused.pop(trial.trial_id, None) == trial.steps:  # PAUSED at the end: no new run
            self._send(_Send("trial state", trial.trial_id, lambda: self._run_of(trial),
                             tags={"maggy.state": trial.state.value}))
            return
        if trial.state is TrialState.PAUSED:
            self._paused[trial.trial_id] = trial.steps
        self._bind(trial)
        early = self._early.pop(trial.trial_id, [])
        self._send(self._end_run(trial, early))

    def _end_run(self, trial: FrozenTrial, early: list | tuple = ()) -> "_Send":
        """A trial run's end: the final metric, the numeric extras, state and error, its status;
        the metrics are made when it is sent, after the run (and, for a run the driver creates,
        the history it logs there) is known."""
        tags = {"maggy.state": trial.state.value}
        if trial.budget is not None:
            tags["maggy.budget"] = str(trial.budget)
        if trial.error:
            tags["maggy.error"] = f"{trial.error['type']}: {trial.error['message']}"[:4000]
        return _Send("trial end", trial.trial_id, lambda: self._run_of(trial), tags=tags,
                     late=lambda: self._end_metrics(trial, early), terminate=_STATUS[trial.state])

    def _end_metrics(self, trial: FrozenTrial, early: list | tuple) -> list:
        now = int(time.time() * 1000)
        key = self.optimization_key
        metrics = [(f"final_{key}", trial.metric, now, trial.steps)] if trial.metric is not None else []
        latest = self._latest.get(trial.trial_id)
        if trial.values is None and trial.metric is not None and (latest is None or latest[2] != trial.metric):
            # the result as the run's latest value under the key, which MLflow's runs table shows (a
            # best epoch returned, or no broadcast at all): at the highest step, after every point there
            step, after = (latest[0], latest[1] + 1) if latest else (0, 0)
            metrics.append((key, trial.metric, max(now, after), step))
        if trial.values is not None:  # several objectives: each under its own key
            metrics += [(k, v, now, trial.steps) for k, v in zip(self.keys, trial.values)]
        metrics += [(k, float(v), now, trial.steps) for k, v in trial.extra.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return metrics + list(early)  # system metrics of a run its worker could not open

    def on_experiment_end(self, result: "Result", outcome: str) -> "Result":
        """Close the runs, attach the table and plots, hand the best model to the registry; the
        result comes back with the MLflow run ids and the model's URI."""
        summary: dict[str, Any] = {"trials": len(result.trials),
                                   **{f"trials_{k.lower()}": v for k, v in result.stats["states"].items()}}
        if "utilization" in result.stats:
            summary["utilization"] = result.stats["utilization"]
        front = [t for t in result.views if t.trial_id in result.front_ids]
        best = None
        if len(self.keys) > 1:  # no single best: the front's runs are tagged, and counted
            summary["pareto_front_size"] = len(front)
        else:  # the best under the trials' own metric name too, so that one column sorts every run
            summary.update({self.optimization_key: result.best_metric, f"best_{self.optimization_key}": result.best_metric})
            best = front[0] if front else None
        if self.log_trials == "best":  # the trial runs of the best (or the front), made now
            for view in front:
                self._send(self._end_run(view))
        if len(self.keys) > 1 and front:
            self._submit("pareto front", lambda: self._tag_front(front))
        self._submit("trial table and plots", lambda: self._log_artifacts(result))
        status = {"finished": "FINISHED", "stopped": "FINISHED", "interrupted": "KILLED"}.get(outcome, "FAILED")
        report = self.finish(summary, status=status, best=best, register_model=self.register_model)
        return dataclasses.replace(result, stats={**result.stats, "tracking": report},
                                   best_run_id=report["best_run_id"], model_uri=report["model_uri"])

    def _tag_front(self, front: list[FrozenTrial]) -> None:
        """The Pareto front: its trials' runs tagged ``maggy.pareto``, their ids on the parent run."""
        for view in front:
            if view.trial_id in self._runs:
                self._log(self._runs[view.trial_id], tags={"maggy.pareto": "true"})
        self._log(self.parent_run_id, tags={"maggy.pareto_front": ",".join(t.trial_id for t in front)[:4000]})

    def _run_of(self, trial: FrozenTrial) -> str:
        """The trial's run, created here when its worker could not open one."""
        if trial.trial_id not in self._runs:
            name = run_name(self.experiment_name, trial.number) if trial.number else None
            run_id = create_trial_run(self._client, self.experiment_id, self.parent_run_id, trial.trial_id, name)
            self._runs[trial.trial_id] = run_id
            self._log(run_id, params=_flat(trial.params))
            history = [(self.optimization_key, v, int(time.time() * 1000), s) for s, v in trial.history]
            self._keep_latest(trial.trial_id, history)
            self._log(run_id, metrics=history)
        return self._runs[trial.trial_id]

    def _log_artifacts(self, result: "Result") -> None:
        """The trial table (CSV, which MLflow's UI shows) and the plots, on the parent run."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="maggy-mlflow-") as tmp:
            result.trials.to_csv(os.path.join(tmp, "trials.csv"), index=False)
            self._client.log_artifact(self.parent_run_id, os.path.join(tmp, "trials.csv"))
            if is_ablation(result):  # what each removal cost: the study's answer, beside the table
                result.ablation.to_csv(os.path.join(tmp, "ablation.csv"), index=False)
                self._client.log_artifact(self.parent_run_id, os.path.join(tmp, "ablation.csv"))
            if len(result.trials):
                from maggy.ui import plot
                try:  # a picture that cannot be drawn must not hold up the run's end
                    os.makedirs(os.path.join(tmp, "plots"))  # one self-contained page: it renders offline too
                    plot.report(result, os.path.join(tmp, "plots", "report.html"))
                except Exception as exc:
                    log.warning("maggy: could not draw the plots for MLflow: %s: %s", type(exc).__name__, exc)
                    return
                self._client.log_artifacts(self.parent_run_id, os.path.join(tmp, "plots"), "plots")

    def finish(self, summary: dict[str, Any], status: str, timeout: float = 60.0,
               best: FrozenTrial | None = None, register_model: str | None = None) -> dict[str, Any]:
        """Close the parent run, deliver what is queued (for as long as it drains: up to ``timeout``
        after the last delivery, so a server slower than the trials loses nothing and one that is
        away holds the end up a minute at most), register the best trial's model when asked, and
        report what happened. The parent run is tagged with
        the best trial's id, run, parameters and metric."""
        def send() -> None:
            now = int(time.time() * 1000)
            metrics = [(k, float(v), now, 0) for k, v in summary.items() if isinstance(v, (int, float))]
            tags = {}
            if best is not None:
                tags = {"maggy.best_trial_id": best.trial_id, f"maggy.best_{self.optimization_key}": str(best.metric),
                        **{f"maggy.best.{k}": str(v) for k, v in _flat(best.params).items()}}
                if best.trial_id in self._runs:
                    tags["maggy.best_run_id"] = self._runs[best.trial_id]
                    self._log(self._runs[best.trial_id], tags={"maggy.best": "true"})  # marked in the runs table
            self._log(self.parent_run_id, metrics=metrics, tags=tags)
            self._client.set_terminated(self.parent_run_id, status=status)
        self._submit("experiment end", send)
        with self._wake:
            self._closing, self._patience = True, timeout
            self._deadline = time.monotonic() + timeout
            self._wake.notify()
        while self._thread.is_alive() and time.monotonic() < self._deadline + 5:
            self._thread.join(1.0)
        self.lost += [item.what for item in self._queue]
        report: dict[str, Any] = {
            "tracking_uri": self.uri, "experiment_id": self.experiment_id, "parent_run_id": self.parent_run_id,
            "delivered": self.delivered, "sends": self.sends, "retries": self.retries, "lost": list(self.lost),
            "best_run_id": self._runs.get(best.trial_id) if best is not None else None, "model_uri": None,
            "url": runs_url(self.uri, self.experiment_id)}
        if report["best_run_id"]:
            try:
                with fast_fail():
                    report.update(self._hand_off(report["best_run_id"], register_model))
            except Exception as exc:  # the results stand; say what went wrong
                report["registry_error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
        return report

    def _hand_off(self, run_id: str, name: str | None) -> dict[str, Any]:
        """The model the best run logged, registered as a new version of ``name`` aliased ``champion``."""
        models = self._client.search_logged_models([self.experiment_id], filter_string=f"source_run_id = '{run_id}'")
        if not models:
            if name:
                return {"registry_error": f"the best trial's run {run_id} logged no model to register"}
            return {}
        model = models[0]
        out: dict[str, Any] = {"model_uri": f"models:/{model.model_id}"}
        if name:
            import mlflow
            from mlflow.tracking._tracking_service.utils import _use_tracking_uri

            with _use_tracking_uri(self.uri):
                version = mlflow.register_model(out["model_uri"], name, await_registration_for=60)
            self._client.set_registered_model_alias(name, "champion", version.version)
            out.update(model_uri=f"models:/{name}@champion", registered_version=int(version.version))
        return out

    # ---- the sending thread ------------------------------------------------------------------

    def _submit(self, what: str, op: Callable[[], None]) -> None:
        """Queue a call that keeps its place among everything queued (no merging across it)."""
        self._send(_Send(what, None, call=op))

    def _send(self, item: "_Send") -> None:
        with self._wake:
            self._queue.append(item)
            self._wake.notify()

    def _log(self, run_id: str, metrics=(), params=None, tags=None) -> None:
        from mlflow.entities import Metric, Param, RunTag

        ms = [Metric(k, v, t, s) for k, v, t, s in metrics]
        ps = [Param(k, v) for k, v in (params or {}).items()]
        ts = [RunTag(k, v) for k, v in (tags or {}).items()]
        first = max(1, _BATCH - len(ps) - len(ts))  # one request holds at most 1000 items in all
        chunks = [ms[:first]] + [ms[i:i + _BATCH] for i in range(first, len(ms), _BATCH)]
        for i, chunk in enumerate(chunks):
            self._client.log_batch(run_id, metrics=chunk, params=ps if i == 0 else [], tags=ts if i == 0 else [])

    def _next(self) -> tuple["_Send", list[int]]:
        """The first queued item, merged with the later ones for the same run that may join it
        (under the lock): what queued while the last request was out goes as one request."""
        head = self._queue[0]
        taken = [0]
        if head.key is None:
            return head, taken
        merged = dataclasses.replace(head, metrics=list(head.metrics), params=dict(head.params), tags=dict(head.tags))
        for i in range(1, len(self._queue)):
            item = self._queue[i]
            if item.key is None or merged.terminate is not None and item.key == merged.key:
                break  # a call keeps its place; nothing joins a run after its end
            if item.key == merged.key:
                if len(merged.metrics) + len(item.metrics) > 10 * _BATCH:
                    break  # the rest of this run waits for the next send, in order
                merged.metrics += item.metrics
                merged.params.update(item.params)
                merged.tags.update(item.tags)
                merged.terminate, merged.late = item.terminate, item.late
                taken.append(i)
        return merged, taken

    def _deliver(self, item: "_Send") -> None:
        if item.call is not None:
            item.call()
            return
        assert item.run is not None
        run_id = item.run()
        metrics = item.metrics + (item.late() if item.late is not None else [])
        if metrics or item.params or item.tags:
            self._log(run_id, metrics=metrics, params=item.params, tags=item.tags)
        if item.terminate is not None:
            self._client.set_terminated(run_id, status=item.terminate)

    def _run(self) -> None:
        delay = 0.5
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if not self._queue:
                    return
                item, taken = self._next()
            try:
                with fast_fail():
                    self._deliver(item)
            except Exception as exc:
                self.retries += 1
                if self._closing and time.monotonic() > self._deadline:
                    log.warning("maggy: giving up on MLflow (%s) with %d items undelivered", exc, len(self._queue))
                    return
                log.info("maggy: MLflow unavailable (%s); retrying in %.1fs", exc, delay)
                with self._wake:
                    self._wake.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.5
            self.delivered += len(taken)
            self.sends += 1
            with self._wake:
                for i in reversed(taken):
                    del self._queue[i]
                if self._closing:  # still draining: the end waits on
                    self._deadline = time.monotonic() + self._patience


@dataclasses.dataclass
class _Send:
    """One thing for the sending thread: a log of ``metrics`` (name, value, ms, step), ``params``
    and ``tags`` to the run that ``run`` names, then its end (``terminate``, a status), merged
    with the others for the same run (``key``, the trial's id; "" the parent run) that queue
    behind it; or a ``call`` (``key`` None) that keeps its place."""

    what: str
    key: str | None
    run: Callable[[], str] | None = None
    metrics: list = dataclasses.field(default_factory=list)
    params: dict = dataclasses.field(default_factory=dict)
    tags: dict = dataclasses.field(default_factory=dict)
    terminate: str | None = None
    #: Metrics made when it is sent (a run's end: after the run and its logged history are known).
    late: Callable[[], list] | None = None
    call: Callable[[], None] | None = None


#: A tuning experiment is model development (MLflow 3's kinds); the UI of 3.17 still opens every
#: experiment on its GenAI overview, hence the view named in :func:`runs_url`.
_KIND_TAG = "mlflow.experimentKind"
_KIND = {_KIND_TAG: "custom_model_development"}


def runs_url(uri: str, experiment_id: str | None) -> str | None:
    """Where MLflow's UI lists the experiment's runs: its training view, which MLflow 3.x does not
    open by default (it opens the GenAI overview); None for a store with no UI (a file or database).

    >>> runs_url("http://mlflow.example.com:5000/", "7")
    'http://mlflow.example.com:5000/#/experiments/7/runs?workflowType=machine_learning'
    >>> runs_url("sqlite:///mlflow.db", "7") is None
    True
    """
    if experiment_id is None or not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def describe(params: Mapping[str, Any]) -> str:
    """The parent run's description (MLflow's note, shown on the run's page): what was tuned, how.

    >>> print(describe({"name": "mnist", "optimizer": "tpe", "num_trials": 20, "optimization_key": "acc",
    ...                 "direction": "max", "searchspace": {"lr": {"type": "DOUBLE", "values": [0.001, 0.1], "log": True}},
    ...                 "description": "lr sweep"}))
    maggy experiment 'mnist': lr sweep
    <BLANKLINE>
    - optimizer: tpe, 20 trials
    - objective: acc (max)
    - searchspace: lr DOUBLE [0.001, 0.1] log
    """
    objectives = Objectives.of(params.get("optimization_key", "metric"), params.get("direction", "max"))
    space = "; ".join(f"{n} {hp.get('type')} {hp.get('values')}" + (" log" if hp.get("log") else "")
                      for n, hp in params.get("searchspace", {}).items())
    trials = f", {params['num_trials']} trials" if params.get("num_trials") else ""
    head = f"maggy experiment '{params.get('name')}'" + (f": {params['description']}" if params.get("description") else "")
    return "\n".join([head, "", f"- optimizer: {params.get('optimizer')}{trials}",
                      f"- objective{'s' if objectives.multi else ''}: {objectives.describe()}", f"- searchspace: {space}"])


def _flat(params: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params are strings of at most 6000 characters."""
    return {str(k): (v if isinstance(v, str) else json.dumps(v, default=str))[:6000] for k, v in params.items()}
