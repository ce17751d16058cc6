"""Any Optuna sampler behind maggy's ask/tell interface, through Optuna's own ask/tell API.

Optuna is an optional dependency: ``pip install "maggy[optuna]"``.
"""

from __future__ import annotations

from typing import Any, Sequence

from maggy.exceptions import InvalidParameterError
from maggy.search.direction import Direction
from maggy.search.optimizers.base import Answer, Optimizer, Suggestion
from maggy.search.searchspace import DOUBLE, INTEGER
from maggy.trial import FrozenTrial, TrialState


class OptunaSampler(Optimizer):
    """Wraps an Optuna sampler, e.g. ``OptunaSampler(optuna.samplers.CmaEsSampler(seed=0))``.

    The sampler brings its own seed; maggy's ``seed`` is not passed on. Running trials are
    reported to Optuna as running, so samplers that handle them (TPE's ``constant_liar``) can.
    Several objectives go to a multi-objective study, for the samplers that handle them
    (``NSGAIISampler``, ``TPESampler``, ...). A conditional searchspace is asked define-by-run,
    parents first, so a trial suggests only its active hyperparameters (for Optuna's TPE, pass
    ``TPESampler(multivariate=True, group=True)`` to model them per group).
    """

    multi_objective = True

    def __init__(self, sampler: Any) -> None:
        try:
            import optuna
        except ImportError:
            raise InvalidParameterError(
                "OptunaSampler needs Optuna: pip install 'maggy[optuna]' (or 'optuna').") from None
        if not isinstance(sampler, optuna.samplers.BaseSampler):
            raise InvalidParameterError(
                f"OptunaSampler needs an optuna.samplers.BaseSampler instance; got {sampler!r}.")
        self.sampler = sampler

    def reset(self) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(sampler=self.sampler, directions=[
            "maximize" if d is Direction.MAX else "minimize" for d in self.directions])
        self.distributions = {hp.name: self._distribution(hp) for hp in self.searchspace}
        self._asked: dict[str, Any] = {}  # maggy trial id -> Optuna trial

    @staticmethod
    def _distribution(hp) -> Any:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if hp.type == DOUBLE:
            return FloatDistribution(hp.low, hp.high, log=hp.log)
        if hp.type == INTEGER:
            return IntDistribution(int(hp.low), int(hp.high), log=hp.log)
        return CategoricalDistribution(list(hp.values))

    @property
    def learns(self) -> bool:
        return True

    def warm_start(self, observations: Sequence[tuple[dict[str, Any], float]]) -> None:
        """The earlier observations become finished trials of the Optuna study."""
        from optuna.trial import create_trial

        super().warm_start(observations)
        sign = Direction(self.direction).sign
        for params, score in self.prior:  # one objective: a warm start with several is refused at the door
            self.study.add_trial(create_trial(params=params, distributions={n: self.distributions[n] for n in params},
                                              value=sign * float(score)))  # type: ignore[arg-type]

    def _ask(self) -> Any:
        """A new Optuna trial that suggested the hyperparameters active in it, parents first."""
        ot = self.study.ask()
        for name in self.searchspace.conditions.order(self.searchspace.names):
            if self.searchspace.conditions.active(name, ot.params):
                ot._suggest(name, self.distributions[name])  # what study.ask(distributions) calls for each
        return ot

    def ask(self, pending: Sequence[FrozenTrial]) -> Answer:
        ot = self._ask()
        return Suggestion(self.searchspace.drop_inactive(ot.params), info={"optuna_trial": ot})

    def accepted(self, trial_id: str, suggestion: Suggestion) -> None:
        ot = suggestion.info["optuna_trial"]
        if dict(ot.params) != dict(suggestion.params):  # a resume keeps the journal's point
            self.rejected(suggestion)
            self.study.enqueue_trial(dict(suggestion.params))
            ot = self._ask()
        self._asked[trial_id] = ot

    def rejected(self, suggestion: Suggestion) -> None:
        """A point maggy already tried: close its Optuna trial, so that none stays RUNNING."""
        from optuna.trial import TrialState as OptunaState

        self.study.tell(suggestion.info["optuna_trial"], state=OptunaState.FAIL)

    def tell(self, trial: FrozenTrial) -> None:
        from optuna.trial import TrialState as OptunaState

        ot = self._asked.pop(trial.trial_id, None)
        if ot is None:
            return
        if trial.state is TrialState.FINALIZED and self.multi and trial.values is not None:
            self.study.tell(ot, list(trial.values))
        elif trial.state is TrialState.FINALIZED and not self.multi and trial.metric is not None:
            self.study.tell(ot, trial.metric)
        elif trial.state is TrialState.EARLY_STOPPED:
            self.study.tell(ot, state=OptunaState.PRUNED)
        else:
            self.study.tell(ot, state=OptunaState.FAIL)
