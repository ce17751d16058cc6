"""Experiment-level stopping rules: a time budget, a target metric, patience, and fail-fast.

Pure decisions on the trials that ended, as the driver sees them end; the driver stops handing
out trials and asks the running ones to stop (through their heartbeat) when :meth:`reason`
names one. The target and patience judge the best trial so far as the progress view and the
result do (:mod:`maggy.search.best`): an early-stopped trial's partial metric, or one at a smaller
budget, never beats a completed one at the top budget. Fail-fast is the exception to "a failing
trial fails only itself": when the first trials all fail the same way, ``train_fn`` has a bug,
and running the rest would only repeat it. A trial that diverged (a NaN or infinite metric:
:class:`~maggy.exceptions.Diverged`) failed for its parameters, not for a bug, so fail-fast passes
over it. An experiment whose ended trials all failed fails too (:func:`none_succeeded`): it has
no result to return.
"""

from __future__ import annotations

import collections
from typing import Sequence

from maggy.exceptions import Diverged, TrialsFailedError
from maggy.search.best import beats, competes
from maggy.search.direction import Direction
from maggy.trial import FrozenTrial, TrialState


class StoppingRules:
    """Watches ended trials and says when, and why, the experiment should stop.

    >>> from maggy.trial import FrozenTrial as T, TrialState as S
    >>> rules = StoppingRules(direction="max", target=0.9, patience=None, timeout=None, fail_fast=3)
    >>> rules.observe(T("a", {}, state=S.FINALIZED, metric=0.95))
    >>> rules.reason(elapsed=1.0)
    'target 0.9 reached (best metric 0.95)'
    """

    def __init__(self, *, direction: str, target: float | None, patience: int | None, timeout: float | None,
                 fail_fast: int) -> None:
        self.direction, self.target, self.patience, self.timeout = direction, target, patience, timeout
        self.fail_fast = fail_fast
        #: The best trial so far, and how many competing trials ended since it did.
        self._best: FrozenTrial | None = None
        self.since_best = 0
        self._first: list[FrozenTrial] = []  # the first ended trials, for fail-fast
        self.error: TrialsFailedError | None = None
        #: Why the experiment stopped before its trials ran out, once a rule came true.
        self.stopped: str | None = None

    def observe(self, trial: FrozenTrial) -> None:
        """A trial's run ended (FINALIZED, PAUSED, EARLY_STOPPED or ERROR)."""
        if len(self._first) < self.fail_fast and not diverged(trial):
            self._first.append(trial)
            if len(self._first) == self.fail_fast:
                self.error = _same_failure(self._first)
        if trial.state is TrialState.PAUSED or not competes(trial):  # a rung is not a trial's end
            return
        if beats(trial, self._best, self.direction):
            self._best, self.since_best = trial, 0
        else:
            self.since_best += 1

    def stops(self, elapsed: float) -> str | None:
        """The reason when a rule has just come true (once; it is kept in :attr:`stopped`), else None."""
        if self.stopped is None and (reason := self.reason(elapsed)):
            self.stopped = reason
            return reason
        return None

    def reason(self, elapsed: float) -> str | None:
        """Why the experiment should stop now, or None."""
        if self.error is not None:
            return f"the first {self.fail_fast} trials failed with the same error (fail_fast={self.fail_fast})"
        if self.timeout is not None and elapsed >= self.timeout:
            return f"timeout of {self.timeout:g}s reached"
        best = None if self._best is None else self._best.metric
        if self.target is not None and best is not None and not Direction(self.direction).better(self.target, best):
            return f"target {self.target:g} reached (best metric {best:g})"
        if self.patience is not None and self.since_best >= self.patience:
            return f"no improvement in {self.since_best} finished trials (patience={self.patience})"
        return None


def diverged(trial: FrozenTrial) -> bool:
    """Whether ``trial`` failed because its metric was NaN or infinite."""
    return trial.state is TrialState.ERROR and trial.error is not None and trial.error.get("type") == Diverged.__name__


def none_succeeded(name: str, trials: Sequence[FrozenTrial]) -> TrialsFailedError | None:
    """The error of an experiment in which trials failed and none produced a metric; None when
    one did, or none ended.

    >>> from maggy.trial import FrozenTrial as T, TrialState as S
    >>> err = {"type": "OSError", "message": "disk full", "traceback": ""}
    >>> print(none_succeeded("demo", [T("a", {}, state=S.ERROR, error=err), T("b", {}, state=S.PENDING)]))
    No trial of experiment 'demo' succeeded: 1 failed, the most common error (1 times): OSError: disk full
    >>> none_succeeded("demo", [T("a", {}, state=S.ERROR, error=err), T("b", {}, state=S.FINALIZED, metric=1.0)])
    """
    failed = [t for t in trials if t.state is TrialState.ERROR]
    if not failed or any(t.metric is not None for t in trials if t.state is not TrialState.ERROR):
        return None
    errors = collections.Counter(f"{t.error['type']}: {t.error['message']}" for t in failed if t.error)
    common = "" if not errors else ", the most common error ({1} times): {0}".format(*errors.most_common(1)[0])
    return TrialsFailedError(f"No trial of experiment '{name}' succeeded: {len(failed)} failed{common}")


def _same_failure(trials: Sequence[FrozenTrial]) -> TrialsFailedError | None:
    """The error all of ``trials`` failed with, when they failed alike (same type, raised at the
    same place); None otherwise."""
    errors = [t.error for t in trials if t.state is TrialState.ERROR and t.error]
    if len(errors) != len(trials):
        return None
    keys = {(e["type"], _origin(e.get("traceback", "")) or e["message"]) for e in errors}
    if len(keys) != 1:
        return None
    first = errors[0]
    ids = ", ".join(t.trial_id for t in trials)
    return TrialsFailedError(
        f"train_fn failed the same way in the first {len(trials)} trials ({ids}), so it looks like a bug in "
        f"train_fn rather than bad luck with some parameters: {first['type']}: {first['message']}\n"
        f"{first.get('traceback', '')}The experiment stopped; fix train_fn and run again, or pass fail_fast=0 "
        "to let every trial run regardless.")


def _origin(traceback: str) -> str:
    """The last ``File ..., line N`` of a traceback: where the error was raised."""
    frames = [line.strip() for line in traceback.splitlines() if line.strip().startswith("File ")]
    return frames[-1] if frames else ""
