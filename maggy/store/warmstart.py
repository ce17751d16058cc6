"""What an experiment already knows before its first trial: observations from earlier work.

``warm_start=`` names a :class:`~maggy.result.Result`, an experiment directory (local or
``hdfs://``, read through its journal) or a DataFrame of parameters and a metric. Its finished
trials become ``(params, metric)`` observations for the model-based optimizers. A source whose
searchspace differs gives what fits: its dimensions that the new searchspace also has, from rows
whose values lie within it; the new dimensions it lacks are left out of each observation (the
optimizer fills them from its prior). What was left out is said in the notes. In a conditional
searchspace an empty cell (NaN, None) of a conditional hyperparameter means it was inactive.

>>> import pandas as pd
>>> from maggy import Searchspace
>>> sp = Searchspace(lr=("DOUBLE", [0.001, 0.1]), layers=("INTEGER", [1, 4]))
>>> frame = pd.DataFrame({"lr": [0.01, 0.5], "metric": [0.9, 0.7]})
>>> obs, notes = warm_observations(frame, sp)
>>> obs
[({'lr': 0.01}, 0.9)]
>>> notes
['1 of 2 rows lie outside the searchspace and are left out', "the source lacks ['layers']: drawn from the prior"]
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from maggy.exceptions import InvalidParameterError
from maggy.search.searchspace import Searchspace
from maggy.trial import TrialState

#: The trial states whose metric a warm start takes (an early-stopped one is a partial result).
_FINISHED = (TrialState.FINALIZED.value, TrialState.PAUSED.value)


def warm_observations(source: Any, searchspace: Searchspace,
                      metric: str = "metric") -> tuple[list[tuple[dict[str, Any], float]], list[str]]:
    """The ``(params, metric)`` observations ``source`` gives for ``searchspace``, and notes on
    what did not fit. Raises InvalidParameterError when ``source`` is none of the kinds it can be,
    or shares no dimension with the searchspace."""
    rows, origin = _rows(source, metric)
    names = set(searchspace.names)
    known = sorted({k for params, _ in rows for k in params} & names)
    if rows and not known:
        raise InvalidParameterError(
            f"warm_start: {origin} has none of the searchspace's hyperparameters {searchspace.names}; "
            "pass results of an experiment over (some of) the same hyperparameters.")
    out, outside = [], 0
    for params, value in rows:
        point = {k: params[k] for k in known if k in params and not _inactive(searchspace, k, params[k])}
        if not all(searchspace[k].contains(v) for k, v in point.items()):
            outside += 1
            continue
        out.append((point, value))
    notes = []
    if outside:
        notes.append(f"{outside} of {len(rows)} rows lie outside the searchspace and are left out")
    missing = [n for n in searchspace.names if n not in known]
    if missing:
        notes.append(f"the source lacks {missing}: drawn from the prior")
    return out, notes


def _inactive(searchspace: Searchspace, name: str, value: Any) -> bool:
    """Whether ``value`` marks a conditional hyperparameter as inactive in its row: NaN or None
    (a DataFrame's empty cell), unless it is a value of the dimension."""
    empty = value is None or (isinstance(value, float) and math.isnan(value))
    return name in searchspace.conditions and empty and not searchspace[name].contains(value)


def _rows(source: Any, metric: str) -> tuple[list[tuple[dict[str, Any], float]], str]:
    """Parameters and metric of each finished trial of ``source``, and how to name it."""
    import pandas as pd

    from maggy.result import Result
    from maggy.store.replay import load_result

    if isinstance(source, str):
        try:
            source = load_result(source)
        except (OSError, ValueError) as exc:
            raise InvalidParameterError(f"warm_start={source!r}: no experiment to read there ({exc}).") from None
    if isinstance(source, Result):
        rows = [(dict(t.params), float(t.metric)) for t in source.views
                if t.metric is not None and t.state.value in _FINISHED]
        return rows, f"the experiment in {source.experiment_dir}"
    if isinstance(source, pd.DataFrame):
        if metric not in source.columns:
            raise InvalidParameterError(
                f"warm_start: the DataFrame has no column {metric!r} (the optimization_key) beside its parameters; "
                f"it has {list(source.columns)}.")
        params = [c for c in source.columns if c != metric]
        rows = []
        for record in source.to_dict("records"):
            value = record[metric]
            if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
                rows.append(({k: _native(record[k]) for k in params}, float(value)))
        return rows, "the DataFrame"
    raise InvalidParameterError(
        f"warm_start must be a maggy Result, an experiment directory (a path, local or hdfs://) or a pandas "
        f"DataFrame of parameters and {metric!r}; got {type(source).__name__}.")


def _native(value: Any) -> Any:
    """numpy scalars as Python values, so that the searchspace's checks and the journal take them."""
    return value.item() if hasattr(value, "item") else value
