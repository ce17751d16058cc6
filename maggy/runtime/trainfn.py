"""The contract of the user's ``train_fn``: which arguments it takes and what it may return."""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from maggy.exceptions import InvalidParameterError
from maggy.search.searchspace import Searchspace


@dataclass(frozen=True)
class Signature:
    """Which of maggy's own arguments ``train_fn`` asks for."""

    wants_reporter: bool
    wants_budget: bool


def inspect_train_fn(train_fn: Callable, searchspace: Searchspace) -> Signature:
    """Check that ``train_fn`` accepts exactly the searchspace's names; raises InvalidParameterError."""
    if not callable(train_fn):
        raise InvalidParameterError(f"train_fn must be a function; got {train_fn!r}.")
    try:
        sig = inspect.signature(train_fn)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"Cannot read the signature of train_fn {train_fn!r}: {exc}.") from None
    params = sig.parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    positional_only = [n for n, p in params.items() if p.kind is p.POSITIONAL_ONLY]
    if positional_only:
        raise InvalidParameterError(
            f"train_fn takes positional-only parameters {positional_only}; maggy passes "
            "hyperparameters as keyword arguments, so drop the '/' from its signature.")
    own = {"reporter", "budget"}
    named = {n for n, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - own
    missing = sorted(n for n in named - set(searchspace.names) if params[n].default is params[n].empty)
    if missing:
        raise InvalidParameterError(
            f"train_fn requires {missing}, which the searchspace does not define "
            f"(it defines {searchspace.names}). Add them to the searchspace or give them defaults.")
    unexpected = [n for n in searchspace.names if n not in named]
    if unexpected and not var_kw:
        raise InvalidParameterError(
            f"The searchspace defines {unexpected}, which train_fn does not accept "
            f"(it accepts {sorted(named)}). Add them to train_fn's parameters or to **kwargs.")
    return Signature(wants_reporter="reporter" in params, wants_budget="budget" in params)


def parse_return(value: Any, optimization_key: str | Sequence[str]) -> tuple[float, dict[str, Any]]:
    """Split what ``train_fn`` returned into the metric and the extra columns.

    With several objectives (a list of keys) the metric is the first one's value and the others'
    are in the extras, each checked to be a finite number. Raises TypeError, with what was
    returned and what is expected, for anything else.

    >>> parse_return({"acc": 0.9, "latency": 12, "note": "ok"}, ["acc", "latency"])
    (0.9, {'note': 'ok', 'latency': 12.0})
    """
    keys = [optimization_key] if isinstance(optimization_key, str) else list(optimization_key)
    if len(keys) > 1:
        expected = f"train_fn must return a dict with a number for each of the keys {keys} (the optimization_key)"
    else:
        expected = f"train_fn must return a number or a dict with the key '{keys[0]}' holding a number"
    returned = f"it returned {type(value).__name__} {value!r:.200}"
    if not isinstance(value, dict):
        if len(keys) > 1 or _number(value) is None:
            raise TypeError(f"{expected}; {returned}.")
        value = {keys[0]: value}
    elif any(k not in value for k in keys):
        raise TypeError(f"{expected}; it returned a dict with keys {sorted(map(str, value))}.")
    found = {k: _number(value[k]) for k in keys}
    for k, v in found.items():
        if v is None:
            raise TypeError(f"{expected}; {returned}, whose '{k}' is {type(value[k]).__name__}.")
        if not math.isfinite(v):
            raise TypeError(f"{expected}; the metric is {v}." if len(keys) == 1 else f"{expected}; its '{k}' is {v}.")
    extra = {str(k): to_json_value(v) for k, v in value.items() if k not in found}
    extra.update({k: found[k] for k in keys[1:]})
    return float(found[keys[0]]), extra  # type: ignore[arg-type]  # checked above


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when it is no real number."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def to_json_value(v: Any) -> Any:
    """A value that survives JSON: numpy scalars unwrapped, other objects as their repr."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    return repr(v)
