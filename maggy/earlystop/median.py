"""The median stopping rule (Golovin et al., "Google Vizier", KDD 2017)."""

from __future__ import annotations

import statistics
from typing import Sequence

from maggy.earlystop.base import EarlyStopPolicy
from maggy.trial import FrozenTrial
from maggy.validation import check_int


class MedianStoppingRule(EarlyStopPolicy):
    """Stop a trial whose best value up to step s is worse than the median of the finished
    trials' running averages up to step s.

    It acts once ``min_trials`` finished trials have metrics up to that step.

    >>> from maggy.trial import FrozenTrial as T
    >>> done = [T("a", {}, history=((0, 0.8), (1, 0.9))), T("b", {}, history=((0, 0.7), (1, 0.9)))]
    >>> MedianStoppingRule(min_trials=2).should_stop(T("c", {}, history=((0, 0.1), (1, 0.2))), done, "max")
    True
    """

    def __init__(self, min_trials: int = 10) -> None:
        self.min_trials = check_int("min_trials", min_trials, low=1)

    def should_stop(self, trial: FrozenTrial, finished: Sequence[FrozenTrial], direction: str) -> bool:
        if not trial.history:
            return False
        step = trial.history[-1][0]
        averages = []
        for other in finished:
            upto = [v for s, v in other.history if s <= step]
            if upto:
                averages.append(sum(upto) / len(upto))
        if len(averages) < self.min_trials:
            return False
        median = statistics.median(averages)
        values = [v for _, v in trial.history]
        if direction == "max":
            return max(values) < median
        return min(values) > median
