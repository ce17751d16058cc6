"""Whatever watches an experiment: progress, the journal, MLflow tracking and the user's own hooks.

The driver holds a list of :class:`Callback` objects and calls each hook on every one of them, in
order, on its own thread and after it has replied to the worker concerned, so a slow callback
delays the next decision but never a worker's reply. Trials arrive as read-only
:class:`~maggy.trial.FrozenTrial` snapshots taken when the event happened.

>>> class Ends(Callback):
...     def __init__(self):
...         self.ended = []
...     def on_trial_end(self, trial):
...         self.ended.append((trial.trial_id, trial.state.value))
>>> from maggy.trial import FrozenTrial, TrialState
>>> cb = Ends()
>>> cb.on_trial_end(FrozenTrial("a1", {"x": 1}, state=TrialState.FINALIZED, metric=0.5))
>>> cb.ended
[('a1', 'FINALIZED')]

Pass your own with ``lagom(train_fn, config, callbacks=[Ends()])``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from maggy.trial import FrozenTrial

if TYPE_CHECKING:
    from maggy.result import Result


@dataclass(frozen=True)
class ExperimentInfo:
    """What an experiment is, for ``on_experiment_start``; a resumed one brings its trials so far
    (``trials``) and how many times it was resumed before."""

    name: str
    directory: str
    config: Mapping[str, Any]
    total_trials: int
    num_workers: int
    trials: tuple[FrozenTrial, ...] = ()
    resumes: int = 0
    tracking: Mapping[str, Any] | None = None
    #: The fingerprint of ``train_fn`` (see maggy.store.fingerprint), kept in the journal.
    fingerprint: str | None = None
    #: Whether each run of a trial keeps a checkpoint directory of its own (PBT).
    versioned_checkpoints: bool = False
    #: Where the driver listens for its workers (``host:port``).
    rpc_address: str | None = None


class Callback:
    """Hooks into an experiment's life; override the ones you need (each does nothing here)."""

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        """Before the first worker starts."""

    def on_trial_start(self, trial: FrozenTrial) -> None:
        """A worker was handed ``trial`` (again, when a paused or lost trial continues)."""

    def on_trial_result(self, trial: FrozenTrial, points: Sequence[tuple[int, float]]) -> None:
        """``trial`` reported the metric ``points`` (step, value), already in its history."""

    def on_trial_end(self, trial: FrozenTrial) -> None:
        """A run of ``trial`` ended: FINALIZED, EARLY_STOPPED or ERROR, or PAUSED when a
        multi-fidelity optimizer may continue it later (it then ends again, at the latest as
        FINALIZED when the experiment ends)."""

    def on_trial_log(self, trial: FrozenTrial, lines: Sequence[str]) -> None:
        """Lines of ``trial``'s log arrived: what its ``train_fn`` printed or logged, and its
        ``reporter.log`` lines (all of them are in ``trials/<trial id>.log``)."""

    def on_system_metrics(self, trial: FrozenTrial, sample: Mapping[str, float]) -> None:
        """The worker running ``trial`` sampled its system metrics (``cpu_util``, ``mem``,
        ``gpu_util``, ``gpu_mem``; see :mod:`maggy.runtime.usage`); ``trial.usage`` holds their means."""

    def on_trial_change(self, trial: FrozenTrial) -> None:
        """Any state change of ``trial`` (PENDING, RUNNING, LOST, ... included), and its MLflow
        run becoming known."""

    def on_step_end(self) -> None:
        """After the driver handled a message or ran its periodic checks."""

    def on_experiment_end(self, result: "Result", outcome: str) -> "Result | None":
        """The experiment ended: ``outcome`` is ``"finished"``, ``"stopped"``, ``"interrupted"``
        or ``"failed"``.

        A callback that has something to add to the result returns an amended copy
        (``dataclasses.replace(result, ...)``), which the callbacks after it and ``lagom`` get;
        none changes the result it was given."""


class CallbackList:
    """The driver's callbacks in order, and the events of its current step: queued while it
    decides and replies, delivered together at the step's end (:meth:`flush`).

    >>> class Seen(Callback):
    ...     def on_trial_end(self, trial):
    ...         print("ended", trial.trial_id)
    ...     def on_step_end(self):
    ...         print("step")
    >>> cbs = CallbackList([Seen()])
    >>> cbs.queue("on_trial_end", FrozenTrial("a1", {}))
    >>> cbs.flush()
    ended a1
    step
    """

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)
        self._events: list[tuple[str, tuple[Any, ...]]] = []

    def queue(self, hook: str, *args: Any) -> None:
        """Deliver ``hook(*args)`` at the step's end."""
        self._events.append((hook, args))

    def notify(self, hook: str, *args: Any) -> None:
        """Deliver ``hook(*args)`` now, to every callback in order."""
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def flush(self) -> None:
        """Deliver the step's events, then end the step."""
        events, self._events = self._events, []
        for hook, args in events:
            self.notify(hook, *args)
        self.notify("on_step_end")

    def end(self, result: "Result", outcome: str) -> "Result":
        """The experiment's end: each callback may hand on an amended result (MLflow's run ids).
        Every callback hears it, also after one failed; the first failure is raised then."""
        failure: BaseException | None = None
        for cb in self.callbacks:
            try:
                result = cb.on_experiment_end(result, outcome) or result
            except BaseException as exc:  # noqa: BLE001 - raised below, once the others have ended
                failure = failure or exc
        if failure is not None:
            raise failure
        return result
