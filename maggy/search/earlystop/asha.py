"""Asynchronous successive halving as a stopping rule, for ``train_fn``s that loop over epochs."""

from __future__ import annotations

from typing import Sequence

from maggy.search.direction import Direction
from maggy.search.earlystop.base import EarlyStopPolicy
from maggy.search.rungs import top_of_rung
from maggy.trial import FrozenTrial
from maggy.validation import check_int


class ASHAStopping(EarlyStopPolicy):
    """Stop a trial at a rung when it is not in the top ``1/reduction_factor`` there.

    Rungs sit at ``grace_period * reduction_factor**k`` reported steps (step s counts as s + 1
    units of resource). A trial's value at a rung is the metric it reported on reaching it; the
    rule acts at a rung once ``reduction_factor`` trials have reached it.

    >>> from maggy.trial import FrozenTrial
    >>> rule = ASHAStopping(reduction_factor=2, grace_period=1)
    >>> [rule.should_stop(FrozenTrial(t, {}, history=((0, v),)), [], "max") for t, v in [("a", .9), ("b", .1)]]
    [False, True]
    """

    def __init__(self, reduction_factor: int = 3, grace_period: int = 1) -> None:
        self.eta = check_int("reduction_factor", reduction_factor, low=2)
        self.grace_period = check_int("grace_period", grace_period, low=1)
        self._rungs: dict[int, dict[str, float]] = {}

    def should_stop(self, trial: FrozenTrial, finished: Sequence[FrozenTrial], direction: str) -> bool:
        sign = Direction(direction).sign
        reached = trial.history[-1][0] + 1
        rung = self.grace_period
        while rung <= reached:
            recorded = self._rungs.setdefault(rung, {})
            if trial.trial_id not in recorded:
                value = next(v for s, v in trial.history if s + 1 >= rung)
                recorded[trial.trial_id] = sign * value
                top = top_of_rung(recorded, self.eta)
                if top and recorded[trial.trial_id] < recorded[top[-1]]:  # ties with the last kept stay
                    return True
            rung *= self.eta
        return False
