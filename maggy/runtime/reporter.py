"""The object ``train_fn`` receives as ``reporter``: metrics, log lines and the STOP signal."""

from __future__ import annotations

import numbers
import threading
from typing import Any, Callable

from maggy.exceptions import EarlyStopped
from maggy.rpc.messages import MAX_TEXT
from maggy.runtime.values import as_number, finite


class Reporter:
    """Collects what one trial reports; the worker's heartbeat sends it to the driver.

    ``broadcast(metric, step)`` records a metric and raises :class:`maggy.EarlyStopped` once the
    driver has asked this trial to stop; ``log(msg)`` sends a line to the trial's log.
    ``checkpoint_dir`` is this trial's own directory: save state there so that a promoted trial
    (multi-fidelity optimizers such as ASHA) continues where it stopped instead of retraining,
    and call ``checkpoint()`` after each save, so that a trial whose executor is lost continues
    from there on another one.

    In a gang (``workers_per_trial > 1``) every rank has a reporter with its ``rank`` and
    ``world_size``. Every rank calls ``broadcast`` the same number of times: it is a collective
    that shares a stop, so that all ranks raise EarlyStopped at the same step; only rank 0's
    points reach the driver, and only rank 0 saves checkpoints and calls ``checkpoint()``.
    """

    def __init__(self, trial_id: str, params: dict[str, Any], budget: float | None = None,
                 checkpoint_dir: str | Callable[[], str] | None = None, next_step: int = 0,
                 rank: int = 0, world_size: int = 1, direction: str | None = None) -> None:
        self.trial_id = trial_id
        self.params = dict(params)
        self.budget = budget
        self._checkpoint_dir = checkpoint_dir
        self._lock = threading.Lock()
        self._points: list[list] = []
        self._logs: list[str] = []
        self._stop = threading.Event()
        self._last: tuple[int, float] | None = None
        self._next_step = next_step
        #: Called with the step of each checkpoint ``checkpoint()`` marks (set by the worker).
        self.on_checkpoint: Callable[[int], None] | None = None
        #: This worker's rank in the trial's gang, and the gang's size (0 and 1 without a gang).
        self.rank = rank
        self.world_size = world_size
        #: Whether the experiment maximises (``"max"``) or minimises what ``broadcast`` reports
        #: (None: not known, as in a reporter made by hand).
        self.direction = direction
        #: In a gang, the collective that tells every rank whether any of them was told to stop
        #: (set by the worker; see maggy.runtime.gang).
        self.agree: Callable[[bool], bool] | None = None

    def broadcast(self, metric: Any, step: int | None = None) -> None:
        """Report ``metric`` at ``step`` (default: one after the last step). A metric is anything
        ``float()`` takes but text and booleans (a numpy scalar, a one-element tensor); a NaN or
        infinite one raises :class:`~maggy.exceptions.Diverged`, which fails the trial as diverged."""
        value = as_number(metric)
        if value is None:
            raise TypeError(f"reporter.broadcast(metric=...) needs a number; got {type(metric).__name__} {metric!r:.200}")
        finite(value, f"reporter.broadcast's metric at step {step}" if step is not None else "reporter.broadcast's metric")
        with self._lock:
            if step is None:
                step = self._next_step if self._last is None else self._last[0] + 1
            elif isinstance(step, bool) or not isinstance(step, numbers.Integral):
                raise TypeError(f"reporter.broadcast(step=...) needs an int; got {step!r}")
            self._last = (int(step), value)
            if self.rank == 0:
                self._points.append([int(step), value])
        if self.agree is not None:  # a gang: the vote alone decides, so that every rank stops at this step
            # (a STOP the heartbeat hears after the vote waits for the next broadcast's vote)
            if self.agree(self._stop.is_set()):
                self._stop.set()
                raise EarlyStopped(f"trial {self.trial_id} was stopped early by the driver")
            return
        if self._stop.is_set():
            raise EarlyStopped(f"trial {self.trial_id} was stopped early by the driver")

    def checkpoint(self) -> None:
        """Say that ``checkpoint_dir`` now holds a consistent state as of the last broadcast step.

        If this trial's worker is lost, the trial continues on another worker from the latest
        checkpoint marked so: its metric history is cut back to that step, and ``train_fn`` finds
        its files in ``checkpoint_dir`` (save every few epochs, load at the start).
        """
        with self._lock:
            step = self._last[0] if self._last is not None else self._next_step - 1
        if self.on_checkpoint is not None:
            self.on_checkpoint(step)

    def log(self, msg: Any) -> None:
        """Send one line to this trial's log on the driver (cut at 16 KiB, with a marker)."""
        with self._lock:
            self._logs.append(truncate(str(msg)))

    @property
    def checkpoint_dir(self) -> str | None:
        """This trial's own directory, made when first asked for (a callable given to the
        constructor is called then, once)."""
        if callable(self._checkpoint_dir):
            self._checkpoint_dir = self._checkpoint_dir()
        return self._checkpoint_dir

    @checkpoint_dir.setter
    def checkpoint_dir(self, value: str | Callable[[], str] | None) -> None:
        self._checkpoint_dir = value

    @property
    def last(self) -> tuple[int, float] | None:
        """The last (step, metric) broadcast, if any."""
        return self._last

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    def take(self) -> tuple[list[list], list[str]]:
        """Remove and return the points and log lines not yet sent."""
        with self._lock:
            points, logs = self._points, self._logs
            self._points, self._logs = [], []
        return points, logs

    def untake(self, points: list[list], logs: list[str]) -> None:
        """Put back what :meth:`take` returned and could not be sent, ahead of anything newer."""
        with self._lock:
            self._points[:0], self._logs[:0] = points, logs


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut.

    >>> truncate("x" * 10, limit=4)
    'xxxx...[6 more characters cut]'
    """
    return text if len(text) <= limit else f"{text[:limit]}...[{len(text) - limit} more characters cut]"
