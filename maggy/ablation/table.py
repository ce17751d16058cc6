"""The outcome of an ablation study: what each removal cost, against the base trial."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from maggy.ablation.study import BASE
from maggy.search.direction import Direction

if TYPE_CHECKING:
    from maggy.result import Result


def is_ablation(result: Result) -> bool:
    """Whether ``result`` is an ablation study's (its one dimension is ``ablation``)."""
    return tuple(result.searchspace_names) == ("ablation",)


def ablation_table(result: Result) -> pd.DataFrame:
    """One row per trial that ended: ``ablated`` (None for the base), ``kind``, ``state``,
    ``metric`` and ``delta``, the change against the base oriented by the direction (negative:
    leaving it out made the model worse), most harmful removal first; trials without a metric last.

    >>> from maggy.trial import Trial, TrialState
    >>> trials = [Trial(n, {"ablation": n}, state=TrialState.FINALIZED, metric=m, start=i)
    ...           for i, (n, m) in enumerate([("base", 0.9), ("feature:age", 0.7), ("feature:id", 0.91)])]
    >>> from maggy.result import Result
    >>> ablation_table(Result.of("s", "max", trials, ["ablation"], "/tmp/s", {}))[["ablated", "delta"]].round(2).values.tolist()
    [['age', -0.2], [None, 0.0], ['id', 0.01]]
    """
    if not is_ablation(result):
        raise AttributeError("result.ablation: this result is not an ablation study's; run "
                             "experiment.lagom(train_fn, AblationStudy(...)) for one")
    trials = result.trials
    sign = Direction(result.objectives.directions[0]).sign
    metric = "metric" if "metric" in trials else result.objectives.primary
    base = trials.loc[(trials["ablation"] == BASE) & trials[metric].notna(), metric]
    kind_name = trials["ablation"].str.partition(":")
    table = pd.DataFrame({
        "ablated": [None if a == BASE else name for a, name in zip(trials["ablation"], kind_name[2])],
        "kind": [None if a == BASE else kind for a, kind in zip(trials["ablation"], kind_name[0])],
        "state": trials["state"], "metric": trials[metric].astype(float),
        "trial_id": trials["trial_id"]})
    table["delta"] = sign * (table["metric"] - float(base.iloc[0])) if len(base) else float("nan")
    return table.sort_values("delta", kind="stable", na_position="last", ignore_index=True)
