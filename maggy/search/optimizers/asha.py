"""Asynchronous successive halving (Li et al., MLSys 2020) and asynchronous Hyperband.

Trials start at the smallest budget (rung 0). Whenever a worker is free, the best trial of the
highest rung that is in the top ``1/reduction_factor`` of its rung and not yet promoted moves up
one rung, with ``reduction_factor`` times the budget. A promotion continues the *same* trial:
``train_fn`` gets the larger ``budget`` and finds its state in ``reporter.checkpoint_dir``, so no
work is repeated. With nothing to promote, a new trial starts at rung 0, drawn at random or,
with ``sampler="tpe"``, from TPE fitted on the highest rung with enough results (as BOHB does),
the trials still running without a result there counted as bad ones (constant liar), as TPE does.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from maggy.exceptions import InvalidParameterError
from maggy.search.optimizers.base import DONE, WAIT, Answer, Optimizer, Score, Suggestion
from maggy.search.optimizers.tpe import TPESampler
from maggy.search.rungs import top_of_rung
from maggy.trial import FrozenTrial
from maggy.validation import check_choice, check_int, check_number


class Ladder:
    """The rungs of one successive-halving bracket: budgets and the scores reached at each."""

    def __init__(self, budgets: list[float], eta: int) -> None:
        self.budgets = budgets
        self.eta = eta
        self.scores: list[dict[str, Score]] = [{} for _ in budgets]
        self.promoted: list[set[str]] = [set() for _ in budgets]

    def record(self, trial_id: str, budget: float, score: Score) -> None:
        self.scores[self.budgets.index(budget)][trial_id] = score

    def promotable(self) -> tuple[str, int] | None:
        """(trial id, rung it leaves) of the best promotion available, highest rung first."""
        for k in reversed(range(len(self.budgets) - 1)):
            for tid in top_of_rung(self.scores[k], self.eta):
                if tid not in self.promoted[k]:
                    return tid, k
        return None


def rung_budgets(resource_min: float, resource_max: float, eta: int) -> list[float]:
    """``resource_min * eta**k`` for every k with a budget not above ``resource_max``."""
    count = int(math.floor(math.log(resource_max / resource_min, eta) + 1e-9)) + 1
    budgets = [resource_min * eta ** k for k in range(count)]
    as_int = float(resource_min).is_integer()
    return [int(b) if as_int else float(b) for b in budgets]


class ASHA(Optimizer):
    """Asynchronous successive halving with promotion that continues trials from checkpoints.

    Args:
        reduction_factor: keep the top ``1/reduction_factor`` of a rung (η, an int >= 2).
        resource_min: the budget of rung 0 (epochs, or any resource ``train_fn`` understands).
        resource_max: the largest budget; rungs are ``resource_min * η**k`` up to it.
        sampler: ``"random"`` or ``"tpe"`` (model-based, as BOHB) for new trials.

    >>> from maggy import Searchspace
    >>> opt = ASHA(reduction_factor=3, resource_min=1, resource_max=9)
    >>> opt.setup(Searchspace(x=("DOUBLE", [0, 1])), direction="max", seed=0, num_trials=9)
    >>> opt.ask(pending=[]).budget
    1
    """

    resumes_trials = True
    multi_objective = True  # promotes by non-dominated sorting, as MO-ASHA

    def __init__(self, reduction_factor: int = 3, resource_min: float = 1, resource_max: float = 27,
                 sampler: str = "random", n_startup: int = 10) -> None:
        self.eta = check_int("reduction_factor", reduction_factor, low=2)
        self.resource_min = check_number("resource_min", resource_min, low=0, strict=True)
        self.resource_max = check_number("resource_max", resource_max, low=0, strict=True)
        if self.resource_max < self.resource_min:
            raise InvalidParameterError(
                f"resource_max ({resource_max}) must be >= resource_min ({resource_min}).")
        self.sampler = check_choice("sampler", sampler, ("random", "tpe"))
        self.n_startup = check_int("n_startup", n_startup, low=1)
        self.budgets = rung_budgets(resource_min, resource_max, self.eta)
        self._tpe = TPESampler()

    def _make_ladders(self) -> list[Ladder]:
        return [Ladder(self.budgets, self.eta)]

    def reset(self) -> None:
        self._tpe.multivariate = not self.multi  # as TPE chooses: per dimension for several objectives
        self.ladders = self._make_ladders()
        self._owner: dict[str, Ladder] = {}  # trial id -> its bracket
        self._params: dict[str, dict[str, Any]] = {}
        self._started = 0
        self._filled = [0] * len(self.ladders)  # new trials started per bracket

    def _bracket(self) -> int:
        """The bracket of the next new trial: ASHA has one."""
        return 0

    def ask(self, pending: Sequence[FrozenTrial]) -> Answer:
        for ladder in self.ladders:
            found = ladder.promotable()
            if found is not None:
                tid, k = found
                ladder.promoted[k].add(tid)
                return Suggestion(dict(self._params[tid]), budget=ladder.budgets[k + 1], trial_id=tid)
        if self.num_trials is None or self._started < self.num_trials:
            index = self._bracket()
            self._started += 1
            self._filled[index] += 1
            ladder = self.ladders[index]
            evidence = self._evidence(ladder)
            if evidence is None:
                return Suggestion(self.searchspace.sample(self.rng), budget=ladder.budgets[0], info={"ladder": index})
            rung, obs = evidence
            waiting = [dict(t.params) for t in pending if t.trial_id not in ladder.scores[rung]]
            return Suggestion(self._tpe.sample(self.searchspace, obs, self.rng, pending=waiting),
                              budget=ladder.budgets[0], info={"ladder": index, "good": self._model(ladder)})
        return WAIT if pending else DONE

    def outdated(self, suggestion: Suggestion) -> bool:
        """Whether a promotion became possible since ``suggestion`` (a new trial) was made, or,
        with ``sampler="tpe"``, the results told since changed its model's good group."""
        if any(ladder.promotable() is not None for ladder in self.ladders):
            return True
        return suggestion.info.get("good") != self._model(self.ladders[suggestion.info["ladder"]])

    def accepted(self, trial_id: str, suggestion: Suggestion) -> None:
        self._owner[trial_id] = self.ladders[suggestion.info["ladder"]]
        self._params[trial_id] = dict(suggestion.params)

    def rejected(self, suggestion: Suggestion) -> None:
        self._started -= 1
        self._filled[suggestion.info["ladder"]] -= 1

    @property
    def learns(self) -> bool:
        return self.sampler == "tpe"

    def _evidence(self, ladder: Ladder) -> tuple[int, list[tuple[dict[str, Any], Score]]] | None:
        """With ``sampler="tpe"``, the highest rung with enough results for TPE to fit, and its
        observations (a warm start's count with every rung's); None: a random point."""
        if self.sampler == "tpe":
            for rung in reversed(range(len(ladder.budgets))):
                scores = ladder.scores[rung]
                if len(scores) + len(self.prior) >= self.n_startup:
                    return rung, [*self.prior, *((self._params[tid], s) for tid, s in scores.items())]
        return None

    def _model(self, ladder: Ladder) -> tuple[int, tuple[int, ...]] | None:
        """What a TPE point of ``ladder`` rests on: its rung and the good ones there."""
        evidence = self._evidence(ladder)
        return None if evidence is None else (evidence[0], self._tpe.good([s for _, s in evidence[1]]))

    def tell(self, trial: FrozenTrial) -> None:
        score = self.result_of(trial)
        if score is None:
            return
        ladder = self._owner.get(trial.trial_id)
        if ladder is None or trial.budget not in ladder.budgets:
            return
        ladder.record(trial.trial_id, trial.budget, score)

    def completes(self, trial: FrozenTrial) -> bool:
        return trial.budget is None or trial.budget >= self.budgets[-1]


class Hyperband(ASHA):
    """Asynchronous Hyperband (Li et al., JMLR 2018; asynchronous as in ASHA's paper): ASHA
    brackets that start at different budgets, filled in Hyperband's proportions.

    Bracket ``b`` starts its trials at ``resource_min * η**b`` and can halve them ``h = s_max - b``
    times. Hyperband's guarantee rests on spending about the same budget in every bracket, so a
    bracket gets ``⌈(s_max + 1) / (h + 1) · η**h⌉`` new trials per cycle: many cheap ones in the
    aggressive brackets, a few full-budget ones in the last. Within a cycle the brackets are
    filled one after another, the most aggressive first, as Hyperband's own loop runs them (and
    deterministically, so a resume replays it).

    >>> hb = Hyperband(reduction_factor=3, resource_min=1, resource_max=27)
    >>> hb.weights
    [27, 12, 6, 4]
    """

    def __init__(self, reduction_factor: int = 3, resource_min: float = 1, resource_max: float = 27,
                 sampler: str = "random", n_startup: int = 10) -> None:
        super().__init__(reduction_factor, resource_min, resource_max, sampler, n_startup)
        s_max = len(self.budgets) - 1
        #: New trials per cycle for each bracket, the most aggressive first.
        self.weights = [math.ceil((s_max + 1) / (s_max - b + 1) * self.eta ** (s_max - b)) for b in range(s_max + 1)]

    def _make_ladders(self) -> list[Ladder]:
        return [Ladder(self.budgets[s:], self.eta) for s in range(len(self.budgets))]

    def _bracket(self) -> int:
        k = sum(self._filled) % sum(self.weights)  # the place of the next new trial in its cycle
        for b, weight in enumerate(self.weights):
            if k < weight:
                return b
            k -= weight
        raise AssertionError("unreachable: k < sum(weights)")
