"""Population-based training (Jaderberg et al., "Population Based Training of Neural Networks",
2017), asynchronous, on resident workers.

A population of ``num_trials`` members trains in intervals of ``perturbation_interval`` steps
(``train_fn`` gets the ``budget`` to reach and finds its state in ``reporter.checkpoint_dir``,
as under ASHA). When a member ends an interval, it is ranked against the results the other
members reached at the same budget. A member in the top or the middle continues. A member in
the bottom ``quantile_fraction`` *exploits* and *explores*: a new trial starts from the
checkpoint and the history of a member in the top fraction, with that member's
hyperparameters perturbed (in a conditional searchspace, the hyperparameters that a changed
parent activates are drawn, and those it deactivates dropped). Each run keeps its own checkpoint directory
(``trials/<trial>@<budget>``), so a checkpoint is never copied while it is being written.
A member ends at ``resource_max``.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Callable, Mapping, Sequence

from maggy.exceptions import InvalidParameterError
from maggy.search.optimizers.base import DONE, WAIT, Answer, Optimizer, Suggestion
from maggy.search.searchspace import DOUBLE, INTEGER, Searchspace
from maggy.trial import FrozenTrial, TrialState
from maggy.validation import check_number

#: How a parameter may change: the values to pick from, or a function drawing one.
Mutation = Sequence[Any] | Callable[[Any], Any]


class PBT(Optimizer):
    """Population-based training.

    Args:
        perturbation_interval: steps (budget units) between decisions.
        resource_max: the budget at which a member ends.
        quantile_fraction: the share of the population at the top that others copy, and at
            the bottom that copies (at most 0.5).
        resample_probability: the chance that an explored parameter is drawn afresh (from its
            mutation, or the searchspace) instead of perturbed.
        mutations: the parameters that change, each with the values to pick from or a
            function ``rng -> value``; default: every parameter, drawn from the searchspace.
        perturbation_factors: a perturbed number is multiplied by one of these (and kept within
            its range); a listed or categorical value moves to a neighbour.

    >>> from maggy import Searchspace
    >>> pbt = PBT(perturbation_interval=2, resource_max=6)
    >>> pbt.setup(Searchspace(lr=("DOUBLE", [1e-4, 1e-1], "log")), direction="max", seed=0, num_trials=4)
    >>> pbt.budgets
    [2, 4, 6]
    >>> pbt.ask(pending=[]).budget
    2
    """

    resumes_trials = True
    versions_checkpoints = True

    def __init__(self, perturbation_interval: float = 4, resource_max: float = 20, quantile_fraction: float = 0.25,
                 resample_probability: float = 0.25, mutations: Mapping[str, Mutation] | None = None,
                 perturbation_factors: tuple[float, float] = (0.8, 1.2)) -> None:
        self.interval = check_number("perturbation_interval", perturbation_interval, low=0, strict=True)
        self.resource_max = check_number("resource_max", resource_max, low=0, strict=True)
        if self.resource_max < self.interval:
            raise InvalidParameterError(
                f"resource_max ({resource_max}) must be at least perturbation_interval ({perturbation_interval}).")
        self.quantile_fraction = check_number("quantile_fraction", quantile_fraction, low=0, strict=True)
        if self.quantile_fraction > 0.5:
            raise InvalidParameterError(
                f"quantile_fraction={quantile_fraction!r} is invalid: expected a number in (0, 0.5], the share "
                "of the population at the top (copied) and at the bottom (copying).")
        self.resample_probability = check_number("resample_probability", resample_probability, low=0)
        if self.resample_probability > 1:
            raise InvalidParameterError(
                f"resample_probability={resample_probability!r} is invalid: expected a probability in [0, 1].")
        if mutations is not None and not isinstance(mutations, Mapping):
            raise InvalidParameterError(
                f"mutations={mutations!r} is invalid: expected a dict of parameter name -> values or function.")
        for name, spec in (mutations or {}).items():
            if not callable(spec) and (isinstance(spec, str) or not isinstance(spec, Sequence) or not spec):
                raise InvalidParameterError(
                    f"mutations[{name!r}] is invalid: expected a non-empty list of values or a function rng -> value.")
        self.mutations = None if mutations is None else dict(mutations)
        self.factors = tuple(check_number("perturbation_factors", f, low=0, strict=True) for f in perturbation_factors)
        count = math.ceil(self.resource_max / self.interval - 1e-9)
        as_int = self.interval.is_integer() and self.resource_max.is_integer()
        budgets = [min(self.interval * (k + 1), self.resource_max) for k in range(count)]
        self.budgets = [int(b) if as_int else b for b in budgets]

    def setup(self, searchspace: Searchspace, *, direction: str | Sequence[str], seed: int | None = None,
              num_trials: int | None = None) -> None:
        unknown = sorted(set(self.mutations or {}) - set(searchspace.names))
        if unknown:
            raise InvalidParameterError(
                f"PBT mutations name {unknown}, which the searchspace does not have ({searchspace.names}).")
        if num_trials is None or num_trials < 2:
            raise InvalidParameterError(
                f"PBT needs a population: num_trials={num_trials!r} is its size; use 2 or more (4 per worker "
                "is a good start).")
        super().setup(searchspace, direction=direction, seed=seed, num_trials=num_trials)

    def reset(self) -> None:
        self._members: dict[str, int] = {}  # trial id -> population slot
        self._params: dict[str, dict[str, Any]] = {}
        self._reached: dict[float, dict[int, tuple[float, str]]] = collections.defaultdict(dict)
        self._latest: dict[str, float] = {}  # trial id -> budget of its latest completed run
        self._waiting: collections.deque[tuple[str, float]] = collections.deque()  # PAUSED: (trial, budget)
        self._started = 0

    def ask(self, pending: Sequence[FrozenTrial]) -> Answer:
        if self._started < (self.num_trials or 0):  # the population first, so that ranks mean something
            slot = self._started
            self._started += 1
            return Suggestion(self.searchspace.sample(self.rng), budget=self.budgets[0], info={"slot": slot})
        if self._waiting:
            return self._decide(*self._waiting.popleft())
        return WAIT if pending else DONE

    def _decide(self, trial_id: str, budget: float) -> Suggestion:
        """Continue ``trial_id`` for another interval, or replace it by a perturbed copy of a
        member in the top fraction of the results at the same budget. The copy starts from that
        member's latest checkpoint (it may have gone on since) and trains one interval more."""
        slot = self._members[trial_id]
        ranked = sorted(self._reached[budget].items(), key=lambda item: item[1][0])  # worst first
        cut = int(len(ranked) * self.quantile_fraction)
        bottom = {s for s, _ in ranked[:cut]}
        top = [tid for s, (_, tid) in ranked[len(ranked) - cut:]
               if s != slot and self._latest[tid] < self.budgets[-1]] if cut else []
        if slot in bottom and top:
            donor = top[int(self.rng.integers(len(top)))]
            start = self._latest[donor]
            return Suggestion(self._explore(self._params[donor]), budget=self._after(start), parent=donor,
                              parent_budget=start, info={"slot": slot, "member": trial_id, "budget": budget})
        return Suggestion(dict(self._params[trial_id]), budget=self._after(budget), trial_id=trial_id)

    def _after(self, budget: float) -> float:
        return self.budgets[self.budgets.index(budget) + 1]

    def _explore(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        names = self.searchspace.names if self.mutations is None else list(self.mutations)
        for name in names:
            if name not in out:  # inactive in this member
                continue
            hp, spec = self.searchspace[name], (self.mutations or {}).get(name)
            if self.rng.random() < self.resample_probability:
                out[name] = spec(self.rng) if callable(spec) else (
                    spec[int(self.rng.integers(len(spec)))] if spec is not None else hp.sample(self.rng))
            elif spec is not None and not callable(spec):
                out[name] = _neighbour(list(spec), out[name], self.rng)
            elif hp.type in (DOUBLE, INTEGER):
                value = out[name] * self.factors[int(self.rng.integers(len(self.factors)))]
                value = min(max(value, hp.low), hp.high)
                out[name] = int(round(value)) if hp.type == INTEGER else float(value)
            elif spec is None:
                out[name] = _neighbour(list(hp.values), out[name], self.rng)
            else:  # a function and no resampling: draw from it anyway, it is the only way it changes
                out[name] = spec(self.rng)
        return self.searchspace.fill(out, self.rng)

    def accepted(self, trial_id: str, suggestion: Suggestion) -> None:
        self._members[trial_id] = suggestion.info["slot"]
        self._params[trial_id] = dict(suggestion.params)

    def rejected(self, suggestion: Suggestion) -> None:
        if suggestion.parent is None:
            self._started -= 1
        else:  # the copy was a duplicate: decide for that member again
            self._waiting.appendleft((suggestion.info["member"], suggestion.info["budget"]))

    def tell(self, trial: FrozenTrial) -> None:
        slot = self._members.get(trial.trial_id)
        if slot is None or trial.metric is None or trial.state not in (TrialState.FINALIZED, TrialState.PAUSED):
            return  # a member that failed or was stopped leaves the population
        assert trial.budget is not None, "PBT runs every trial with a budget"
        self._reached[trial.budget][slot] = (self.score(trial.metric), trial.trial_id)
        self._latest[trial.trial_id] = trial.budget
        if trial.state is TrialState.PAUSED:
            self._waiting.append((trial.trial_id, trial.budget))

    def completes(self, trial: FrozenTrial) -> bool:
        return trial.budget is None or trial.budget >= self.budgets[-1]


def _neighbour(values: list[Any], current: Any, rng: Any) -> Any:
    """The value next to ``current`` in ``values`` (one step either way), or a random one when
    ``current`` is not listed."""
    if current not in values:
        return values[int(rng.integers(len(values)))]
    i = values.index(current) + (1 if rng.random() < 0.5 else -1)
    return values[min(max(i, 0), len(values) - 1)]
