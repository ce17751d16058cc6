"""TensorBoard event files of an experiment, turned on by ``tensorboard=True``.

``tensorboard --logdir <experiment dir>/tensorboard`` then charts every trial as a run of its own,
named ``<name>-<n>`` as in the console and MLflow, with the objective at every reported step,
and its HPARAMS tab lists the trials with their parameters, status and result: the top-level
run holds the experiment's hyperparameters (from the searchspace) and objectives, each trial's
run its parameters, its end and its final result under each objective's key.

The experiment directory may be on HDFS, which TensorBoard's own writers cannot reach without
TensorFlow, so the events are built from the tensorboard package's protos, framed as TFRecords
in memory and stored through :mod:`maggy.store.storage`. The driver's loop never waits on it:
the hooks only note what happened and a thread of the tracker's own writes. When a run of a
trial ends, its whole file (every step so far) is rewritten under a name that never changes, so a
continued trial or a resumed experiment replaces its files instead of adding to them.

>>> from maggy import Searchspace
>>> from maggy.config import HyperparameterOptConfig
>>> config = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), tensorboard=True)
>>> configured(config).name, configured(HyperparameterOptConfig(searchspace=config.searchspace))
('tensorboard', None)
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from maggy.callbacks import ExperimentInfo
from maggy.exceptions import BackendUnavailableError
from maggy.integrations.tracker import Tracker
from maggy.store.storage import storage_for
from maggy.trial import FrozenTrial, TrialState, run_name

if TYPE_CHECKING:
    from maggy.config import HyperparameterOptConfig
    from maggy.result import Result

log = logging.getLogger(__name__)

#: The one file in every run's directory. TensorBoard reads any name holding ``tfevents``; the
#: usual time stamp in it is fixed here so that a rewrite always replaces the same file.
EVENTS = "events.out.tfevents.0.maggy"
_ATTEMPTS = 3  # tries of each write before it is given up (and counted in ``lost``)
_ENDED = (TrialState.FINALIZED, TrialState.EARLY_STOPPED, TrialState.ERROR, TrialState.PAUSED)


def configured(config: "HyperparameterOptConfig") -> "TensorBoardTracker | None":
    """The TensorBoard tracker when the config asks for it (``tensorboard=True``)."""
    return TensorBoardTracker() if config.tensorboard else None


class TensorBoardTracker(Tracker):
    """Writes an experiment's TensorBoard event files from a thread of its own; see the module
    docstring. It has no worker-side half."""

    name = "tensorboard"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[str, Callable[[], bytes]] = {}  # run directory -> its file's content, when wanted
        self._closing = False
        self._thread: threading.Thread | None = None
        self._times: dict[str, dict[int, float]] = {}  # trial id -> step -> when it arrived
        self._noted: dict[str, tuple[Any, ...]] = {}  # trial id -> what its queued file holds
        #: Files that could not be written, by their run directory.
        self.lost: list[str] = []

    def check(self) -> None:
        """The preflight: the tensorboard package is importable (no TensorFlow needed)."""
        try:
            import tensorboard  # noqa: F401
            from tensorboard.plugins.hparams import summary_v2  # noqa: F401
        except ImportError:
            raise BackendUnavailableError(
                "tensorboard=True writes TensorBoard event files, but the tensorboard package is not installed: "
                "pip install tensorboard (or pip install maggy[tensorboard]), or leave tensorboard off.") from None

    # ---- callback hooks (never block) ----------------------------------------------------------

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        """Queue the top-level run's file (and, when resumed, the earlier trials'), start writing."""
        self._storage = storage_for(info.directory)
        self._root = self._storage.join(info.directory, "tensorboard")
        self._experiment = info.name
        keys = info.config.get("optimization_key", "metric")
        self._keys = [keys] if isinstance(keys, str) else list(keys)
        space, directions = dict(info.config.get("searchspace") or {}), info.config.get("direction", "max")
        directions = [directions] * len(self._keys) if isinstance(directions, str) else list(directions)
        self._queue(self._root, lambda: _experiment_events(space, self._keys, directions))
        for trial in info.trials:
            self._note(trial)
        self._thread = threading.Thread(target=self._run, name="maggy-tensorboard", daemon=True)
        self._thread.start()

    def on_trial_result(self, trial: FrozenTrial, points: Sequence[tuple[int, float]]) -> None:
        times, now = self._times.setdefault(trial.trial_id, {}), time.time()
        for step, _ in points:
            times.setdefault(int(step), now)

    def on_trial_end(self, trial: FrozenTrial) -> None:
        self._note(trial)

    def on_experiment_end(self, result: "Result", outcome: str) -> None:
        """Queue the trials whose last state is not written yet, then wait for every write."""
        if self._thread is None:
            return None
        for trial in result.views:
            self._note(trial)
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(600.0)
        if self.lost:
            log.warning("maggy: %d TensorBoard event files could not be written, e.g. %s", len(self.lost), self.lost[0])
        return None

    def _note(self, trial: FrozenTrial) -> None:
        """Queue ``trial``'s file if it ran and its file would change."""
        seen = (trial.state, trial.steps, trial.metric, trial.values)
        if (not trial.history and trial.state not in _ENDED) or self._noted.get(trial.trial_id) == seen:
            return
        self._noted[trial.trial_id] = seen
        run = run_name(self._experiment, trial.number) if trial.number else trial.trial_id
        times = dict(self._times.get(trial.trial_id, {}))
        self._queue(self._storage.join(self._root, run), lambda: _trial_events(trial, times, self._keys))

    # ---- the writing thread --------------------------------------------------------------------

    def _queue(self, directory: str, content: Callable[[], bytes]) -> None:
        with self._cond:
            self._pending[directory] = content  # a newer file of the same run replaces one not yet written
            self._cond.notify()

    def _run(self) -> None:
        made: set[str] = set()
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                directory = next(iter(self._pending))
                content = self._pending.pop(directory)
            try:
                data = content()
                for attempt in range(_ATTEMPTS):
                    try:
                        if directory not in made:
                            self._storage.makedirs(directory)
                            made.add(directory)
                        self._storage.write_bytes(self._storage.join(directory, EVENTS), data)
                        break
                    except Exception:
                        if attempt + 1 == _ATTEMPTS:
                            raise
                        time.sleep(0.5 * 2 ** attempt)
            except Exception as exc:  # noqa: BLE001 - a lost file must not fail the experiment
                log.warning("maggy: cannot write TensorBoard events to %s: %s: %s", directory, type(exc).__name__, exc)
                self.lost.append(directory)

_STATUS = {TrialState.FINALIZED: "STATUS_SUCCESS", TrialState.EARLY_STOPPED: "STATUS_SUCCESS",
           TrialState.ERROR: "STATUS_FAILURE", TrialState.PAUSED: "STATUS_RUNNING", TrialState.RUNNING: "STATUS_RUNNING"}


def _experiment_events(space: Mapping[str, Mapping[str, Any]], keys: Sequence[str], directions: Sequence[str]) -> bytes:
    """The top-level run: the HParams experiment, its hyperparameters' domains and objectives."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    hparams = []
    for name, spec in space.items():
        kind, values = spec.get("type"), [_plain(v) for v in spec.get("values", [])]
        types = {type(v) for v in values}
        domain: Any = None
        if kind == "DOUBLE":
            domain = hp.RealInterval(float(values[0]), float(values[1]))
        elif kind == "INTEGER":
            domain = hp.IntInterval(int(values[0]), int(values[1]))
        elif values and types <= {int, float}:
            domain = hp.Discrete([float(v) for v in values])
        elif len(types) == 1:  # strings or bools; a mix of types has no domain in TensorBoard
            domain = hp.Discrete(values)
        hparams.append(hp.HParam(name, domain))
    metrics = [hp.Metric(key, display_name=key, description=f"objective ({d})") for key, d in zip(keys, directions)]
    now = time.time()
    return _records([(now, 0, hp.hparams_config_pb(hparams, metrics, time_created_secs=now))], now)


def _trial_events(trial: FrozenTrial, times: Mapping[int, float], keys: Sequence[str]) -> bytes:
    """A trial's run: its parameters, the objective at each step, its results and its end."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb

    start = trial.runs[0][0] if trial.runs else trial.start or time.time()
    end = trial.end or start
    params = {str(k): _plain(v) for k, v in trial.params.items()}
    events = [(start, 0, hp.hparams_pb(params, trial_id=str(trial.number), start_time_secs=start))]
    events += [(times.get(int(s), end), int(s), scalar_pb(keys[0], v)) for s, v in trial.history]
    last = max((int(s) for s, _ in trial.history), default=0)
    results = dict(zip(keys, trial.values)) if trial.values is not None else {keys[0]: trial.metric}
    if trial.metric is not None and trial.metric == trial.last_metric:
        results.pop(keys[0])  # already the run's latest value under the key, which the HParams table shows
    results.update({str(k): v for k, v in trial.extra.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    events += [(end, last, scalar_pb(k, float(v))) for k, v in results.items() if v is not None]
    ended = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(_STATUS.get(trial.state, "STATUS_UNKNOWN")),
                                           end_time_secs=end)
    value = summary_pb2.Summary.Value(tag=metadata.SESSION_END_INFO_TAG, tensor=metadata.NULL_TENSOR,
                                      metadata=metadata.create_summary_metadata(
                                          plugin_data_pb2.HParamsPluginData(session_end_info=ended)))
    events.append((end, last, summary_pb2.Summary(value=[value])))
    return _records(events, start)


def _records(summaries: list[tuple[float, int, Any]], created: float) -> bytes:
    """Events of (wall time, step, Summary) as an event file: TFRecords, its version first."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    out = io.BytesIO()
    writer = RecordWriter(out)
    writer.write(event_pb2.Event(wall_time=created, file_version="brain.Event:2").SerializeToString())
    for wall, step, summary in summaries:
        writer.write(event_pb2.Event(wall_time=wall, step=step, summary=summary).SerializeToString())
    return out.getvalue()


def _plain(value: Any) -> bool | int | float | str:
    """A parameter as the HParams plugin holds it: a bool, number or string (anything else as JSON)."""
    value = value.item() if isinstance(value, np.generic) else value
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value, default=str)
