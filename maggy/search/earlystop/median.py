"""The median stopping rule, two ways: at the same step (Optuna's ``MedianPruner``), the default,
or against running averages (Golovin et al., "Google Vizier", KDD 2017)."""

from __future__ import annotations

import statistics
from typing import Sequence

from maggy.search.direction import Direction
from maggy.search.earlystop.base import EarlyStopPolicy
from maggy.trial import FrozenTrial, TrialState
from maggy.validation import check_int


class MedianStoppingRule(EarlyStopPolicy):
    """Stop a trial whose best value so far is worse than the median of the other trials'
    values at its current step.

    The others are the trials that ran to the end (FINALIZED) and reported that very step; the
    rule acts once there are ``min_trials`` of them, and not before step ``warmup_steps``. This
    is Optuna's ``MedianPruner``: it suits learning curves that rise or fall steadily, where
    comparing values at the same step is fair.

    With ``running_average=True`` it is Vizier's rule instead: the trial's best value is
    compared with the median of every ended trial's *average* up to that step. Averages move
    slowly, so on rising curves it stops only trials far below the rest (about half the
    current values), and it shrugs off a noisy step that the step-wise rule would act on: the
    safer choice for noisy curves or unevenly spaced steps.

    >>> from maggy.trial import FrozenTrial as T, TrialState as S
    >>> done = [T(n, {}, state=S.FINALIZED, history=((0, 0.5), (1, 0.9))) for n in "ab"]
    >>> MedianStoppingRule(min_trials=2).should_stop(T("c", {}, history=((0, 0.4), (1, 0.6))), done, "max")
    True
    >>> MedianStoppingRule(min_trials=2, running_average=True).should_stop(
    ...     T("c", {}, history=((0, 0.4), (1, 0.6))), done, "max")  # the averages' median is 0.7
    True
    >>> MedianStoppingRule(min_trials=2, running_average=True).should_stop(
    ...     T("c", {}, history=((0, 0.4), (1, 0.8))), done, "max")
    False
    """

    def __init__(self, min_trials: int = 10, warmup_steps: int = 0, running_average: bool = False) -> None:
        self.min_trials = check_int("min_trials", min_trials, low=1)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, low=0)
        self.running_average = bool(running_average)

    def should_stop(self, trial: FrozenTrial, finished: Sequence[FrozenTrial], direction: str) -> bool:
        if not trial.history:
            return False
        step = trial.history[-1][0]
        if step < self.warmup_steps:
            return False
        others = self._averages(finished, step) if self.running_average else self._at_step(finished, step)
        if len(others) < self.min_trials:
            return False
        median = statistics.median(others)
        values = [v for _, v in trial.history]
        if Direction(direction) is Direction.MAX:
            return max(values) < median
        return min(values) > median

    @staticmethod
    def _at_step(finished: Sequence[FrozenTrial], step: int) -> list[float]:
        values = []
        for other in finished:
            if other.state is TrialState.FINALIZED:
                at = [v for s, v in other.history if s == step]
                if at:
                    values.append(at[-1])
        return values

    @staticmethod
    def _averages(finished: Sequence[FrozenTrial], step: int) -> list[float]:
        averages = []
        for other in finished:
            upto = [v for s, v in other.history if s <= step]
            if upto:
                averages.append(sum(upto) / len(upto))
        return averages
