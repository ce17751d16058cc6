"""Any Optuna sampler behind maggy's ask/tell interface, through Optuna's own ask/tell API.

Optuna is an optional dependency: ``pip install "maggy[optuna]"``.
"""

from __future__ import annotations

from typing import Any, Sequence

from maggy.exceptions import InvalidParameterError
from maggy.optimizers.base import Answer, Optimizer, Suggestion
from maggy.searchspace import DOUBLE, INTEGER, Searchspace
from maggy.trial import Trial, TrialState


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


class OptunaSampler(Optimizer):
    """Wraps an Optuna sampler, e.g. ``OptunaSampler(optuna.samplers.CmaEsSampler(seed=0))``.

    The sampler brings its own seed; maggy's ``seed`` is not passed on. Running trials are
    reported to Optuna as running, so samplers that handle them (TPE's ``constant_liar``) can.
    """

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

    def setup(self, searchspace: Searchspace, *, direction: str, seed: int | None = None,
              num_trials: int | None = None) -> None:
        import optuna

        super().setup(searchspace, direction=direction, seed=seed, num_trials=num_trials)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(sampler=self.sampler,
                                         direction="maximize" if direction == "max" else "minimize")
        self.distributions = {hp.name: self._distribution(hp) for hp in searchspace}
        self._asked: dict[tuple, Any] = {}

    @staticmethod
    def _distribution(hp) -> Any:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if hp.type == DOUBLE:
            return FloatDistribution(hp.low, hp.high, log=hp.log)
        if hp.type == INTEGER:
            return IntDistribution(int(hp.low), int(hp.high), log=hp.log)
        return CategoricalDistribution(list(hp.values))

    def ask(self, pending: Sequence[Trial]) -> Answer:
        ot = self.study.ask(self.distributions)
        params = {hp.name: ot.params[hp.name] for hp in self.searchspace}
        self._asked[_key(params)] = ot
        return Suggestion(params)

    def tell(self, trial: Trial) -> None:
        from optuna.trial import TrialState as OptunaState

        ot = self._asked.pop(_key(trial.params), None)
        if ot is None:
            return
        if trial.state is TrialState.FINALIZED and trial.metric is not None:
            self.study.tell(ot, trial.metric)
        elif trial.state is TrialState.EARLY_STOPPED:
            self.study.tell(ot, state=OptunaState.PRUNED)
        else:
            self.study.tell(ot, state=OptunaState.FAIL)
