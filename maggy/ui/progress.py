"""Live progress of an experiment: a compact view in Jupyter (the bar, the running trials with
their latest step and metric, the best so far), one updating line on a terminal, a plain line per
finished trial in a log, nothing when quiet. The bar is tqdm's meter; the notebook view is a
display that is updated in place (tqdm's own notebook bar needs ipywidgets, and warns without)."""

from __future__ import annotations

import collections
import html
import sys
import time
from dataclasses import dataclass

from tqdm import tqdm

from maggy.callbacks import Callback, ExperimentInfo
from maggy.search.best import COMPETING, Tier, best_trial, competes, pareto_front, tier
from maggy.search.direction import Direction
from maggy.search.objectives import Objectives
from maggy.trial import FrozenTrial, TrialState

_DONE = (TrialState.FINALIZED, TrialState.PAUSED, TrialState.EARLY_STOPPED, TrialState.ERROR)


@dataclass
class Counts:
    done: int
    total: int
    running: int
    early_stopped: int
    failed: int
    best: float | None
    #: With several objectives: how many trials are on the Pareto front (None before any ended).
    front: int | None = None


def _short(params: dict, width: int = 60) -> str:
    """``a=1, b=0.03`` cut to ``width`` characters."""
    text = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return text if len(text) <= width else text[:width - 1] + "…"


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
        self.direction = Direction.MAX
        #: With several objectives (else None): what the Pareto front is over.
        self.objectives: Objectives | None = None
        self._states: dict[str, TrialState] = {}
        self._counts: collections.Counter[TrialState] = collections.Counter()
        # ended trials with a metric, by the tier they compete in (see maggy.search.best), and
        # each tier's best while known: a refresh looks at one trial per tier, not at every trial
        self._pools: dict[Tier, dict[str, FrozenTrial]] = collections.defaultdict(dict)
        self._pool_of: dict[str, Tier] = {}
        self._best: dict[Tier, FrozenTrial] = {}
        # with several objectives: the ended trials with values, the front as of the last refresh
        # and the trials that joined since; the front of (front + joined) is the front of all,
        # unless a trial of the front left (stale): a refresh looks at few trials, not at every one
        self._valued: dict[str, FrozenTrial] = {}
        self._front: dict[str, FrozenTrial] = {}
        self._joined: dict[str, FrozenTrial] = {}
        self._stale = False
        self.min_interval = min_interval
        self._last = 0.0
        self._last_text = ""
        self._handle = None
        self._notebook = verbose and _in_notebook()
        self._tty = verbose and sys.stderr.isatty()
        self._last_done = -1
        self._began = time.monotonic()
        #: Running trials: their name as their MLflow run has it (``<experiment>-<n>``), their
        #: parameters and latest (step, value).
        self._running: dict[str, tuple[str, dict, tuple[int, float] | None]] = {}
        self._run_prefix = name
        #: When the first trial started: the rate (and so the ETA) counts from there, not from
        #: the executors' start-up.
        self._first_start: float | None = None

    def text(self, c: Counts) -> str:
        if self.objectives is not None:
            best = f"front {'-' if c.front is None else c.front}"
        else:
            best = f"best {'-' if c.best is None else f'{c.best:.5g}'}"
        now = time.monotonic()
        rate = c.done / (now - self._first_start) if c.done and self._first_start is not None and \
            now > self._first_start else None
        return tqdm.format_meter(c.done, c.total or None, now - self._began, ncols=120, prefix=self.name,
                                 unit=" trials", rate=rate, postfix=f"{c.running} running, {c.early_stopped} "
                                 f"early-stopped, {c.failed} failed, {best}")

    def html(self, text: str) -> str:
        """The notebook view: the meter, then the running trials' latest step and metric."""
        rows = "".join(
            f"<tr><td><code title='{tid}'>{html.escape(label)}</code></td><td>{html.escape(_short(params))}</td>"
            f"<td>{'' if last is None else last[0]}</td><td>{'' if last is None else f'{last[1]:.5g}'}</td></tr>"
            for tid, (label, params, last) in list(self._running.items())[:8])
        more = len(self._running) - 8
        table = ("<table><tr><th>running</th><th>params</th><th>step</th><th>metric</th></tr>" + rows
                 + (f"<tr><td colspan=4>and {more} more</td></tr>" if more > 0 else "") + "</table>") if rows else ""
        return f"<pre>{html.escape(text)}</pre>{table}"

    # ---- as a callback ---------------------------------------------------------------------

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        self.total, direction = info.total_trials, info.config["direction"]
        if isinstance(direction, str):
            self.direction = Direction(direction)
        else:  # several objectives
            self.objectives = Objectives.of(info.config["optimization_key"], direction)
        if info.resumes:  # a continued experiment: its earlier trials count from the start
            self.name = f"{self.name} (resumed)"
        for trial in info.trials:
            self.on_trial_change(trial)

    def on_trial_result(self, trial: FrozenTrial, points) -> None:
        if trial.trial_id in self._running and points:
            label, params, _ = self._running[trial.trial_id]
            self._running[trial.trial_id] = (label, params, tuple(points[-1]))

    def on_trial_change(self, trial: FrozenTrial) -> None:
        if trial.state is TrialState.RUNNING:
            self._running.setdefault(trial.trial_id, (f"{self._run_prefix}-{trial.number}", dict(trial.params), None))
            if self._first_start is None:
                self._first_start = time.monotonic()
        else:
            self._running.pop(trial.trial_id, None)
        old = self._states.get(trial.trial_id)
        if old is not None:
            self._counts[old] -= 1
        self._states[trial.trial_id] = trial.state
        self._counts[trial.state] += 1
        if self.objectives is not None:
            self._track_front(trial)
            return
        key = self._pool_of.pop(trial.trial_id, None)
        if key is not None:
            del self._pools[key][trial.trial_id]
            if self._best.get(key) is not None and self._best[key].trial_id == trial.trial_id:
                del self._best[key]  # found again when next needed
        if competes(trial):
            key = tier(trial)
            self._pools[key][trial.trial_id] = trial
            self._pool_of[trial.trial_id] = key
            if key in self._best:
                self._best[key] = best_trial((self._best[key], trial), self.direction) or trial

    def _track_front(self, trial: FrozenTrial) -> None:
        """Keep the trials the Pareto front is over (see ``_valued``); the front itself is found
        on refresh."""
        if self._valued.pop(trial.trial_id, None) is not None:
            self._joined.pop(trial.trial_id, None)
            self._stale |= self._front.pop(trial.trial_id, None) is not None
        if trial.state in COMPETING and trial.values is not None:
            self._valued[trial.trial_id] = self._joined[trial.trial_id] = trial

    def _front_size(self, objectives: Objectives) -> int | None:
        """How many trials are on the Pareto front now (None before any trial has values)."""
        if self._stale or self._joined:
            pool = self._valued.values() if self._stale else [*self._front.values(), *self._joined.values()]
            self._front = {t.trial_id: t for t in pareto_front(pool, objectives)}
            self._joined, self._stale = {}, False
        return len(self._front) if self._valued else None

    def on_step_end(self) -> None:
        self.update()

    def on_experiment_end(self, result, outcome: str) -> None:
        self.update(force=True)
        if self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _best_metric(self) -> float | None:
        """The best metric so far (one objective)."""
        for key, pool in self._pools.items():
            best_of_pool = best_trial(pool.values(), self.direction) if pool and key not in self._best else None
            if best_of_pool is not None:
                self._best[key] = best_of_pool
        best = best_trial([self._best[k] for k, pool in self._pools.items() if pool], self.direction)
        return None if best is None else best.metric

    def counts(self) -> Counts:
        objectives = self.objectives
        return Counts(done=sum(self._counts[s] for s in _DONE), total=self.total,
                      running=self._counts[TrialState.RUNNING],
                      early_stopped=self._counts[TrialState.EARLY_STOPPED], failed=self._counts[TrialState.ERROR],
                      best=self._best_metric() if objectives is None else None,
                      front=None if objectives is None else self._front_size(objectives))

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
            view = {"text/plain": text, "text/html": self.html(text)}
            if self._handle is None:
                self._handle = display(view, raw=True, display_id=True)
            else:
                update_display(view, raw=True, display_id=self._handle.display_id)
        elif self._tty:
            sys.stderr.write("\r" + text)
            sys.stderr.flush()
        elif force or c.done != self._last_done:
            self._last_done = c.done
            print(text, file=sys.stderr, flush=True)
