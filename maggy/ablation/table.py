"""The outcome of an ablation study: what each removal cost, against the base trial.

The table reads an experiment's outcome through :class:`Outcome`, the few attributes of
:class:`maggy.result.Result` it needs, not through the result module: ``result.ablation``
calls the table, and imports point one way.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from maggy.ablation.study import BASE
from maggy.search.objectives import Objectives


class Outcome(Protocol):
    """What the table reads of an experiment's outcome (a :class:`maggy.result.Result` has it)."""

    @property
    def searchspace_names(self) -> tuple[str, ...]: ...

    @property
    def trials(self) -> pd.DataFrame: ...

    @property
    def objectives(self) -> Objectives: ...


def is_ablation(outcome: Outcome) -> bool:
    """Whether ``outcome`` is an ablation study's (its one dimension is ``ablation``)."""
    return tuple(outcome.searchspace_names) == ("ablation",)


def ablation_table(outcome: Outcome) -> pd.DataFrame:
    """One row per trial that ended: ``ablated`` (None for the base), ``kind``, ``state``,
    ``metric`` and ``delta``, the change against the base oriented by the direction (negative:
    leaving it out made the model worse), most harmful removal first; trials without a metric
    last (an example: :attr:`maggy.result.Result.ablation`)."""
    if not is_ablation(outcome):
        raise AttributeError("result.ablation: this result is not an ablation study's; run "
                             "experiment.lagom(train_fn, AblationStudy(...)) for one")
    trials = outcome.trials
    sign = outcome.objectives.directions[0].sign
    metric = "metric" if "metric" in trials else outcome.objectives.primary
    base = trials.loc[(trials["ablation"] == BASE) & trials[metric].notna(), metric]
    kind_name = trials["ablation"].str.partition(":")
    table = pd.DataFrame({
        "ablated": [None if a == BASE else name for a, name in zip(trials["ablation"], kind_name[2])],
        "kind": [None if a == BASE else kind for a, kind in zip(trials["ablation"], kind_name[0])],
        "state": trials["state"], "metric": trials[metric].astype(float),
        "trial_id": trials["trial_id"]})
    table["delta"] = sign * (table["metric"] - float(base.iloc[0])) if len(base) else float("nan")
    return table.sort_values("delta", kind="stable", na_position="last", ignore_index=True)
