"""The tracker interface: one place an experiment is recorded (MLflow, TensorBoard, ...).

A tracker is a :class:`~maggy.callbacks.Callback` (trial starts, results and ends, the
experiment's end) with three more duties: a preflight :meth:`Tracker.check` that lagom runs before
any side effect, :meth:`Tracker.start` once every check has passed, and a worker-side half
(:meth:`Tracker.worker`) that runs around ``train_fn`` on the executors. The driver's loop never
waits on a tracker: hooks hand work to a thread of the tracker's own.

Which trackers exist is one table (:data:`maggy.integrations.TRACKERS`); nothing else in maggy
names a tracker.
"""

from __future__ import annotations

from typing import Any, Mapping

from maggy.callbacks import Callback
from maggy.runtime.tracking import TrialTracking


class Tracker(Callback):
    """Records an experiment; see the module docstring."""

    #: The key of this tracker's state in the journal (``state()``), for a resume.
    name: str = ""

    def check(self) -> None:
        """The preflight: raise an error that names the problem and the fix when this tracker
        cannot work (not installed, its server unreachable). Creates nothing."""

    def start(self, config: Mapping[str, Any], resume: Mapping[str, Any] | None = None) -> None:
        """Open the experiment's record (after every check passed); ``resume`` is what
        :meth:`state` returned in an earlier run of this experiment, to re-open the same one."""

    def state(self) -> Mapping[str, Any] | None:
        """What the journal keeps so that a resume re-opens this tracker's record."""
        return None

    def worker(self) -> TrialTracking | None:
        """The worker-side half, or None when workers have nothing to do for this tracker."""
        return None
