"""The contract of the user's ``train_fn``: which arguments it takes and what it may return."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from maggy.exceptions import InvalidParameterError
from maggy.runtime.values import as_number, finite
from maggy.search.searchspace import Searchspace


@dataclass(frozen=True)
class Signature:
    """Which of maggy's own arguments ``train_fn`` asks for."""

    wants_reporter: bool
    wants_budget: bool
    #: ``budget`` has no default: only an optimizer that gives budgets can call train_fn.
    needs_budget: bool = False


#: Parameters through which other tuners hand train_fn every hyperparameter at once.
WHOLE_CONFIG = {"config": "Ray Tune trainable", "trial": "Optuna objective"}


def inspect_train_fn(train_fn: Callable, searchspace: Searchspace) -> Signature:
    """Check that ``train_fn`` accepts exactly the searchspace's names, with a default for each
    conditional one (absent where inactive); raises InvalidParameterError."""
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
    whole = [n for n in missing if n in WHOLE_CONFIG]
    if whole:
        raise InvalidParameterError(
            f"train_fn takes {whole[0]!r}, as a {WHOLE_CONFIG[whole[0]]} does, but maggy calls train_fn with one keyword "
            f"argument per hyperparameter: train_fn({', '.join(f'{n}=...' for n in searchspace.names)}). Write "
            f"def train_fn({', '.join(searchspace.names)}, reporter): ..., or def train_fn(**{whole[0]}) to get them "
            "as one dict.")
    if missing:
        raise InvalidParameterError(
            f"train_fn requires {missing}, which the searchspace does not define "
            f"(it defines {searchspace.names}). Add them to the searchspace or give them defaults.")
    unexpected = [n for n in searchspace.names if n not in named]
    if unexpected and not var_kw:
        raise InvalidParameterError(
            f"The searchspace defines {unexpected}, which train_fn does not accept "
            f"(it accepts {sorted(named)}). Add them to train_fn's parameters or to **kwargs.")
    no_default = [n for n in searchspace.conditions if n in named and params[n].default is params[n].empty]
    if no_default:
        raise InvalidParameterError(
            f"train_fn's parameters {no_default} have no default, but the searchspace makes them conditional ("
            + "; ".join(f"{n} {searchspace.conditions.describe(n)}" for n in no_default) + "), and maggy passes "
            f"nothing for one where it is inactive. Give each a default: def train_fn(..., {no_default[0]}=None).")
    budget = params.get("budget")
    return Signature(wants_reporter="reporter" in params, wants_budget=budget is not None,
                     needs_budget=budget is not None and budget.default is budget.empty)


def parse_return(value: Any, optimization_key: str | Sequence[str]) -> tuple[float, dict[str, Any]]:
    """Split what ``train_fn`` returned into the metric and the extra columns.

    A metric is anything ``float()`` takes but text and booleans (see :mod:`maggy.runtime.values`).
    With several objectives (a list of keys) the metric is the first one's value and the others'
    are in the extras, each checked to be a number. Raises TypeError, with what was returned and
    what is expected, for anything else, and :class:`~maggy.exceptions.Diverged` for a NaN or
    infinite one.

    >>> parse_return({"acc": 0.9, "latency": 12, "note": "ok"}, ["acc", "latency"])
    (0.9, {'note': 'ok', 'latency': 12.0})
    >>> parse_return({"acc": 0.9}, "metric")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: train_fn returned a dict without 'metric' (the optimization_key); it has ['acc']. Pass optimization_key='acc'...
    """
    keys = [optimization_key] if isinstance(optimization_key, str) else list(optimization_key)
    if len(keys) > 1:
        expected = f"train_fn must return a dict with a number for each of the keys {keys} (the optimization_key)"
    else:
        expected = f"train_fn must return a number or a dict with the key '{keys[0]}' holding a number"
    returned = f"it returned {type(value).__name__} {value!r:.200}"
    if not isinstance(value, dict):
        if len(keys) > 1 or as_number(value) is None:
            raise TypeError(f"{expected}; {returned}.")
        value = {keys[0]: value}
    elif any(k not in value for k in keys):
        raise TypeError(_missing_keys(value, keys))
    found = {k: as_number(value[k]) for k in keys}
    for k, v in found.items():
        if v is None:
            raise TypeError(f"{expected}; {returned}, whose '{k}' is {type(value[k]).__name__}.")
        finite(v, "the metric" if len(keys) == 1 else f"the metric '{k}'")
    extra = {str(k): to_json_value(v) for k, v in value.items() if k not in found}
    extra.update({k: found[k] for k in keys[1:]})
    return float(found[keys[0]]), extra  # type: ignore[arg-type]  # checked above


def _missing_keys(value: dict, keys: list[str]) -> str:
    """The error for a returned dict without an objective's key: it names ``optimization_key=``
    and, for one objective, the returned key that is a number as the likely one."""
    missing = [k for k in keys if k not in value]
    has = sorted(map(str, value))
    numeric = [str(k) for k, v in value.items() if as_number(v) is not None]
    if len(keys) == 1:
        fix = (f"Pass optimization_key={numeric[0]!r} to lagom, or return {{{keys[0]!r}: ...}}." if numeric else
               f"Return {{{keys[0]!r}: <a number>, ...}}, or pass the key of your metric as optimization_key=.")
        return f"train_fn returned a dict without {keys[0]!r} (the optimization_key); it has {has}. {fix}"
    return (f"train_fn returned a dict without {missing} of the objectives (optimization_key={keys}); it has {has}. "
            "Return a number for each key, or pass the keys your dict holds as optimization_key=.")


def to_json_value(v: Any) -> Any:
    """A value that survives JSON: numpy scalars unwrapped, other objects as their repr."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    return repr(v)
