"""The ask/tell interface every optimizer implements.

Optimizers are pure decision objects: they see the searchspace, the trials still running and
the results told to them, and they answer with the next point. They never touch Spark, sockets
or files, so each one is testable with plain objects. The scheduler owns the trials: it names
the trial a suggestion becomes (:meth:`Optimizer.accepted`) or drops it as a duplicate
(:meth:`Optimizer.rejected`), and optimizers see only read-only :class:`FrozenTrial` views.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence, Union

import numpy as np

from maggy.search.direction import Direction
from maggy.search.searchspace import Searchspace
from maggy.trial import FrozenTrial, TrialState

WAIT: Literal["wait"] = "wait"
DONE: Literal["done"] = "done"


@dataclass(frozen=True)
class Suggestion:
    """A point to evaluate.

    ``budget`` is set by multi-fidelity optimizers and passed to ``train_fn``; ``trial_id`` names
    a PAUSED trial to continue (a promotion) instead of starting a new one. ``parent`` names a
    trial whose completed run at ``parent_budget`` (default: its latest) a *new* trial starts
    from: that run's checkpoint and the history up to it (PBT's exploit). ``info`` is the
    optimizer's own note on the suggestion, handed back in ``accepted``/``rejected``.
    """

    params: dict[str, Any]
    budget: float | None = None
    trial_id: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    parent_budget: float | None = None


Answer = Union[Suggestion, Literal["wait", "done"]]
#: A result oriented so that larger is better: one number, or one per objective.
Score = Union[float, tuple[float, ...]]


class Optimizer(abc.ABC):
    """Proposes trials with ``ask`` and learns from finished ones through ``tell``.

    Subclasses implement :meth:`ask`; :meth:`tell` and :meth:`on_metric` are optional hooks.

    >>> from maggy import Searchspace
    >>> from maggy.search.optimizers import RandomSearch
    >>> opt = RandomSearch()
    >>> opt.setup(Searchspace(x=("DOUBLE", [0, 1])), direction="max", seed=0)
    >>> 0 <= opt.ask(pending=[]).params["x"] <= 1
    True
    """

    #: Whether ``ask`` may continue PAUSED trials (multi-fidelity promotion).
    resumes_trials: bool = False
    #: Whether it can optimise several objectives at once (a list of ``direction``s).
    multi_objective: bool = False
    #: Whether each run of a trial keeps its own checkpoint directory, so that other trials can
    #: copy a run's checkpoint later (PBT); otherwise a trial has one directory.
    versions_checkpoints: bool = False

    searchspace: Searchspace
    #: The direction of the (first) objective, and of every objective.
    direction: str
    directions: tuple[Direction, ...]
    rng: np.random.Generator
    num_trials: int | None
    #: Earlier observations (params, score) given by :meth:`warm_start`.
    prior: list[tuple[dict[str, Any], Score]]

    def setup(self, searchspace: Searchspace, *, direction: str | Sequence[str], seed: int | None = None,
              num_trials: int | None = None) -> None:
        """Bind the optimizer to an experiment; called once by the driver before the first ask.

        ``direction`` is one direction, or a list of one per objective (the optimizer must be
        :attr:`multi_objective`). ``num_trials`` is how many new trials the experiment will
        start; optimizers that resume trials use it to know when they are done. Subclasses reset
        their state in :meth:`reset`.
        """
        self.searchspace = searchspace
        given = [direction] if isinstance(direction, str) else list(direction)
        self.directions = tuple(Direction(d) for d in given)
        if self.multi and not self.multi_objective:
            raise ValueError(f"{type(self).__name__} optimises one objective; got directions {given}")
        self.direction = str(self.directions[0])
        self.rng = np.random.default_rng(seed)
        self.num_trials = num_trials
        self.prior = []
        self.reset()

    @property
    def learns(self) -> bool:
        """Whether this optimizer's suggestions follow the results it saw, so that a warm start
        informs it (a model-based optimizer)."""
        return False

    def warm_start(self, observations: Sequence[tuple[dict[str, Any], float]]) -> None:
        """Start from earlier ``(params, metric)`` observations, as if those trials had ended
        here (they count towards the start-up trials of model-based optimizers). Dimensions an
        observation lacks are drawn from the prior, with a generator of their own, so that the
        suggestions' random draws stay those of a cold start with the same seed; dimensions its
        values make inactive (a conditional searchspace) are left out.
        """
        fill = np.random.default_rng(len(observations))
        self.prior = [(self.searchspace.fill(params, fill), self.score(metric)) for params, metric in observations]

    def reset(self) -> None:
        """Forget every trial: called by :meth:`setup` once the experiment is bound."""

    @abc.abstractmethod
    def ask(self, pending: Sequence[FrozenTrial]) -> Answer:
        """Return the next Suggestion, WAIT (ask again later) or DONE (nothing more to propose).

        ``pending`` holds the trials handed out and not yet finished.
        """

    def accepted(self, trial_id: str, suggestion: Suggestion) -> None:
        """The scheduler started trial ``trial_id`` for a new point ``ask`` returned."""

    def rejected(self, suggestion: Suggestion) -> None:
        """The scheduler dropped a new point ``ask`` returned (already tried, or no room left)."""

    def tell(self, trial: FrozenTrial) -> None:
        """Receive a trial whose run ended (FINALIZED, PAUSED, EARLY_STOPPED or ERROR)."""

    def outdated(self, suggestion: Suggestion) -> bool:
        """Whether a new point ``ask`` returned should be asked for again, now that the runs
        told since have ended. The scheduler prepares a point ahead of the request it answers and
        checks it when it hands it out; a point found outdated is :meth:`rejected` and asked for
        again (on the reply path, so the check must be cheap). Results change nothing here."""
        return False

    def on_metric(self, trial_id: str, step: int, value: float) -> None:
        """Receive an intermediate metric of a running trial."""

    def completes(self, trial: FrozenTrial) -> bool:
        """Whether a run that ended normally completes ``trial``; if not, it is PAUSED."""
        return True

    def max_trials(self, searchspace: Searchspace) -> int | None:
        """How many trials this optimizer can propose over ``searchspace``, or None if unbounded."""
        return None

    @property
    def multi(self) -> bool:
        """Whether this experiment has several objectives."""
        return len(self.directions) > 1

    def score(self, value: float) -> float:
        """``value`` oriented so that larger is better whatever the direction."""
        return self.directions[0].sign * value

    def score_of(self, trial: FrozenTrial) -> Score | None:
        """A trial's result oriented so that larger is better: a number, or with several
        objectives a tuple, one per objective; None when it has none."""
        if self.multi:
            return None if trial.values is None else tuple(d.sign * v for d, v in zip(self.directions, trial.values))
        return None if trial.metric is None else self.score(trial.metric)

    def result_of(self, trial: FrozenTrial) -> Score | None:
        """The score of a trial whose run ended with a result (FINALIZED, or PAUSED at a rung),
        else None."""
        return self.score_of(trial) if trial.state in (TrialState.FINALIZED, TrialState.PAUSED) else None

    def observations(self, trials: Sequence[FrozenTrial]) -> list[tuple[dict[str, Any], Score]]:
        """(params, score) of the warm start and of the trials that ended with a result (see
        :meth:`result_of`)."""
        scored = ((dict(t.params), self.result_of(t)) for t in trials)
        return [*self.prior, *((p, s) for p, s in scored if s is not None)]
