"""Live progress of an experiment: a bar in Jupyter, a line on a terminal, nothing when quiet."""

from __future__ import annotations

import collections
import sys
import time
from dataclasses import dataclass

from maggy.callbacks import Callback, ExperimentInfo
from maggy.result import best_trial
from maggy.trial import FrozenTrial, TrialState

_DONE = (TrialState.FINALIZED, TrialState.PAUSED, TrialState.EARLY_STOPPED, TrialState.ERROR)
_COMPETING = (TrialState.FINALIZED, TrialState.PAUSED, TrialState.EARLY_STOPPED)  # for the best metric


@dataclass
class Counts:
    done: int
    total: int
    running: int
    early_stopped: int
    failed: int
    best: float | None


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Progress(Callback):
    """Shows :class:`Counts`, kept from the trials' state changes; refreshes at most every
    ``min_interval`` seconds."""

    def __init__(self, name: str, verbose: bool = True, min_interval: float = 0.5) -> None:
        self.name = name
        self.verbose = verbose
        self.total = 0
        self.direction = "max"
        self._states: dict[str, TrialState] = {}
        self._counts: collections.Counter[TrialState] = collections.Counter()
        # ended trials with a metric, by the pool they compete in (see best_trial), and each
        # pool's best while known: a refresh looks at one trial per pool, not at every trial
        self._pools: dict[tuple, dict[str, FrozenTrial]] = collections.defaultdict(dict)
        self._pool_of: dict[str, tuple] = {}
        self._best: dict[tuple, FrozenTrial] = {}
        self.min_interval = min_interval
        self._last = 0.0
        self._last_text = ""
        self._handle = None
        self._notebook = verbose and _in_notebook()
        self._tty = verbose and sys.stderr.isatty()
        self._last_done = -1

    def text(self, c: Counts) -> str:
        width = 24
        filled = int(width * c.done / c.total) if c.total else width
        best = "-" if c.best is None else f"{c.best:.5g}"
        return (f"{self.name} [{'#' * filled}{'.' * (width - filled)}] {c.done}/{c.total} done, "
                f"{c.running} running, {c.early_stopped} early-stopped, {c.failed} failed, best {best}")

    # ---- as a callback ---------------------------------------------------------------------

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        self.total, self.direction = info.total_trials, info.config["direction"]
        for trial in info.trials:
            self.on_trial_change(trial)

    def on_trial_change(self, trial: FrozenTrial) -> None:
        old = self._states.get(trial.trial_id)
        if old is not None:
            self._counts[old] -= 1
        self._states[trial.trial_id] = trial.state
        self._counts[trial.state] += 1
        key = self._pool_of.pop(trial.trial_id, None)
        if key is not None:
            del self._pools[key][trial.trial_id]
            if self._best.get(key) is not None and self._best[key].trial_id == trial.trial_id:
                del self._best[key]  # found again when next needed
        if trial.state in _COMPETING and trial.metric is not None:
            key = (trial.state is TrialState.EARLY_STOPPED, trial.budget)
            self._pools[key][trial.trial_id] = trial
            self._pool_of[trial.trial_id] = key
            if key in self._best:
                self._best[key] = best_trial((self._best[key], trial), self.direction)

    def on_step_end(self) -> None:
        self.update()

    def on_experiment_end(self, result, outcome: str) -> None:
        self.update(force=True)
        if self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def counts(self) -> Counts:
        for key, pool in self._pools.items():
            if pool and key not in self._best:
                self._best[key] = best_trial(pool.values(), self.direction)
        best = best_trial([self._best[k] for k, pool in self._pools.items() if pool], self.direction)
        return Counts(done=sum(self._counts[s] for s in _DONE), total=self.total,
                      running=self._counts[TrialState.RUNNING],
                      early_stopped=self._counts[TrialState.EARLY_STOPPED], failed=self._counts[TrialState.ERROR],
                      best=None if best is None else best.metric)

    def update(self, force: bool = False) -> None:
        """Show the counts; they are only computed when a refresh is due."""
        now = time.monotonic()
        if not self.verbose or (not force and now - self._last < self.min_interval):
            return
        self._last = now
        c = self.counts()
        text = self.text(c)
        if text == self._last_text:
            return
        self._last_text = text
        if self._notebook:
            from IPython.display import display, update_display
            if self._handle is None:
                self._handle = display({"text/plain": text}, raw=True, display_id=True)
            else:
                update_display({"text/plain": text}, raw=True, display_id=self._handle.display_id)
        elif self._tty:
            sys.stderr.write("\r" + text)
            sys.stderr.flush()
        elif force or c.done != self._last_done:
            self._last_done = c.done
            print(text, file=sys.stderr, flush=True)
