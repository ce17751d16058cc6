"""Which trials are best so far: the one rule that the stopping rules, the progress view and the
result share, so that the best an experiment shows while it runs is the best it returns.

A trial competes once it ended with a result: FINALIZED, PAUSED at a rung of a multi-fidelity
optimizer, or EARLY_STOPPED. Trials compare by :func:`tier` first: a completed trial (FINALIZED
or PAUSED) beats an early-stopped one, whose metric is a partial one, and then a larger budget
beats a smaller one, since a metric at a small budget is not comparable with one at a large
budget. Within the top tier the better metric wins, or, with several objectives, every trial no
other beats on all of them (the Pareto front).

>>> from maggy.trial import FrozenTrial, TrialState as S
>>> ended = [FrozenTrial("a", {}, state=S.FINALIZED, metric=0.5, budget=3),
...          FrozenTrial("b", {}, state=S.PAUSED, metric=0.9, budget=1),
...          FrozenTrial("c", {}, state=S.EARLY_STOPPED, metric=0.99, budget=9)]
>>> [best_trial(ended[i:], "max").trial_id for i in range(3)]
['a', 'b', 'c']
>>> beats(ended[1], ended[2], "max"), beats(ended[2], None, "min")
(True, True)
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, TypeVar

import numpy as np

from maggy.search.direction import Direction
from maggy.search.objectives import Objectives
from maggy.search.pareto import pareto_mask
from maggy.trial import FrozenTrial, Trial, TrialState

T = TypeVar("T", bound="Trial | FrozenTrial")

#: The class a trial competes in (see :func:`tier`).
Tier = tuple[bool, float]
#: The states of a trial that ended with a result.
COMPETING = frozenset({TrialState.FINALIZED, TrialState.PAUSED, TrialState.EARLY_STOPPED})


def competes(trial: Trial | FrozenTrial) -> bool:
    """Whether ``trial`` competes for the best metric: it ended with a result and has a metric."""
    return trial.state in COMPETING and trial.metric is not None


def tier(trial: Trial | FrozenTrial) -> Tier:
    """The class ``trial`` competes in: any trial of a higher tier beats any of a lower one,
    whatever their metrics (completed before early-stopped, then the larger budget)."""
    return trial.state is not TrialState.EARLY_STOPPED, -math.inf if trial.budget is None else trial.budget


def rank(trial: Trial | FrozenTrial, direction: str) -> tuple[Tier, float]:
    """How good a competing trial is, larger being better: its tier, then its metric."""
    return tier(trial), Direction(direction).sign * float(trial.metric or 0.0)  # it competes: it has a metric


def beats(trial: Trial | FrozenTrial, best: Trial | FrozenTrial | None, direction: str) -> bool:
    """Whether ``trial`` is strictly better than ``best`` (None: there is no best yet); both
    compete (see :func:`competes`)."""
    return best is None or rank(trial, direction) > rank(best, direction)


def contenders(trials: Iterable[T], has: Callable[[T], bool]) -> list[T]:
    """The trials that ended with a result (``has`` says which have one), of the top tier."""
    pool = [t for t in trials if t.state in COMPETING and has(t)]
    top = max(map(tier, pool), default=None)
    return [t for t in pool if tier(t) == top]


def best_trial(trials: Iterable[T], direction: str) -> T | None:
    """The best trial of ``trials`` (None when none competes); of several as good, the first."""
    return max((t for t in trials if competes(t)), key=lambda t: rank(t, direction), default=None)


def pareto_front(trials: Iterable[T], objectives: Objectives) -> list[T]:
    """The trials of the top tier no other beats on every objective, best first by the first
    objective; with one objective, the best trial.

    >>> from maggy.trial import FrozenTrial
    >>> o = Objectives.of(["acc", "ms"], ["max", "min"])
    >>> done = [FrozenTrial(n, {}, state=TrialState.FINALIZED, metric=a, values=(a, ms))
    ...         for n, a, ms in [("a", 0.9, 30.0), ("b", 0.8, 10.0), ("c", 0.7, 20.0)]]
    >>> [t.trial_id for t in pareto_front(done, o)]
    ['a', 'b']
    """
    if not objectives.multi:
        best = best_trial(trials, str(objectives.directions[0]))
        return [] if best is None else [best]
    pool = contenders(trials, lambda t: t.values is not None)
    if not pool:
        return []
    scores = np.array([objectives.scores(t.values or ()) for t in pool])
    front = [t for t, keep in zip(pool, pareto_mask(scores)) if keep]
    return sorted(front, key=lambda t: -objectives.scores(t.values or ())[0])
