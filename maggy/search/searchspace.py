"""The hyperparameter search space: typed dimensions, seeded sampling and grid enumeration."""

from __future__ import annotations

import collections.abc
import keyword
import math
import numbers
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from maggy.exceptions import InvalidParameterError
from maggy.search.conditions import Branches, Conditions

DOUBLE = "DOUBLE"
INTEGER = "INTEGER"
DISCRETE = "DISCRETE"
CATEGORICAL = "CATEGORICAL"
TYPES = (DOUBLE, INTEGER, DISCRETE, CATEGORICAL)
RANGE_TYPES = (DOUBLE, INTEGER)
#: Argument names maggy passes to ``train_fn`` itself; hyperparameters may not use them.
RESERVED_NAMES = frozenset({"reporter", "budget"})

_SCALARS = (str, bool, numbers.Real, type(None))


@dataclass(frozen=True)
class Hyperparameter:
    """One dimension: a ``[low, high]`` range (DOUBLE, INTEGER) or a list of values."""

    name: str
    type: str
    values: tuple
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.type in RANGE_TYPES

    @property
    def low(self) -> float:
        return self.values[0]

    @property
    def high(self) -> float:
        return self.values[1]

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one value uniformly (log-uniformly when ``log``)."""
        if self.type == DOUBLE:
            if self.log:
                return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
            return float(rng.uniform(self.low, self.high))
        if self.type == INTEGER:
            if self.log:
                x = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
                return int(min(max(math.floor(x), self.low), self.high))
            return int(rng.integers(int(self.low), int(self.high) + 1))
        return self.values[int(rng.integers(len(self.values)))]

    def grid(self, resolution: int) -> list:
        """Values of this dimension on a grid: all values of a list, ``resolution`` points of a range."""
        if self.type not in RANGE_TYPES:
            return list(self.values)
        if self.type == INTEGER and self.high - self.low + 1 <= resolution:
            return list(range(int(self.low), int(self.high) + 1))
        if resolution == 1:
            points = [self.low if self.log else (self.low + self.high) / 2]
        elif self.log:
            points = np.geomspace(self.low, self.high, resolution).tolist()
        else:
            points = np.linspace(self.low, self.high, resolution).tolist()
        if self.type == INTEGER:
            return sorted({int(round(p)) for p in points})
        return [float(p) for p in points]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of this dimension."""
        if self.type == DOUBLE:
            return _is_number(value) and self.low <= value <= self.high
        if self.type == INTEGER:
            return (_is_number(value) and float(value).is_integer()
                    and self.low <= value <= self.high)
        if self.type == DISCRETE:
            return _is_number(value) and value in self.values
        return any(value == v and type(value) is type(v) for v in self.values)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"type": self.type, "values": list(self.values)}
        if self.log:
            out["log"] = True
        return out

    def __repr__(self) -> str:
        if self.type in RANGE_TYPES:
            vals = f"[{self.low}, {self.high}]" + (", log" if self.log else "")
        else:
            vals = repr(list(self.values))
        return f"{self.name}: {self.type} {vals}"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _to_native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _bad(name: str, problem: str, fix: str) -> InvalidParameterError:
    return InvalidParameterError(f"Searchspace parameter '{name}': {problem}. {fix}")


def _parse(name: Any, spec: Any) -> Hyperparameter:
    """Validate one ``name=(TYPE, values[, "log"])`` entry and build its Hyperparameter."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise InvalidParameterError(
            f"Searchspace parameter name {name!r} is not a valid Python identifier; "
            "names are passed to train_fn as keyword arguments, so use e.g. 'learning_rate'.")
    if name in RESERVED_NAMES:
        raise _bad(name, "the name is reserved because maggy passes it to train_fn itself",
                   f"Rename the hyperparameter (reserved: {sorted(RESERVED_NAMES)}).")
    example = f"e.g. {name}=('DOUBLE', [0.001, 0.1]) or {name}=('CATEGORICAL', ['a', 'b'])"
    if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
        raise _bad(name, f"expected a tuple (TYPE, values[, 'log']), got {spec!r}", f"Write {example}.")
    ptype, values = spec[0], spec[1]
    if not isinstance(ptype, str) or ptype.upper() not in TYPES:
        raise _bad(name, f"unknown type {ptype!r}", f"Use one of {', '.join(TYPES)}.")
    ptype = ptype.upper()
    log = False
    if len(spec) == 3 and _is_number(spec[1]) and _is_number(spec[2]):
        raise _bad(name, f"the bounds are given as two values, {spec[1]!r} and {spec[2]!r}",
                   f"Give them as one list: {name}=({spec[0]!r}, [{spec[1]!r}, {spec[2]!r}]).")
    if len(spec) == 3:
        if spec[2] != "log":
            raise _bad(name, f"unknown scale {spec[2]!r}", "The only option is 'log', for a log-scaled range.")
        if ptype not in RANGE_TYPES:
            raise _bad(name, f"log scale applies only to DOUBLE and INTEGER ranges, not {ptype}",
                       "Drop 'log' or use a DOUBLE/INTEGER range.")
        log = True
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise _bad(name, f"values must be a list, got {values!r}", f"Write {example}.")
    values = tuple(_to_native(v) for v in values)
    if ptype in RANGE_TYPES:
        if len(values) != 2 or not all(_is_number(v) for v in values):
            raise _bad(name, f"a {ptype} range must be [low, high] with two finite numbers, got {list(values)}",
                       f"Write e.g. {name}=('{ptype}', [1, 10]).")
        low, high = values
        if ptype == INTEGER:
            if not all(float(v).is_integer() for v in values):
                raise _bad(name, f"an INTEGER range needs integer bounds, got {list(values)}",
                           "Use whole numbers, or a DOUBLE range.")
            low, high = int(low), int(high)
        else:
            low, high = float(low), float(high)
        if low >= high:
            raise _bad(name, f"the range [{low}, {high}] is empty or reversed",
                       "Give [low, high] with low < high; for a constant, pass it to train_fn yourself.")
        if log and low <= 0:
            raise _bad(name, f"a log-scaled range needs bounds > 0, got [{low}, {high}]",
                       "Raise the lower bound above 0 or drop 'log'.")
        values = (low, high)
    else:
        if not values:
            raise _bad(name, f"a {ptype} parameter needs at least one value", f"Write {example}.")
        if ptype == DISCRETE and not all(_is_number(v) for v in values):
            raise _bad(name, f"DISCRETE values must be finite numbers, got {list(values)}",
                       "Use CATEGORICAL for non-numeric choices.")
        if not all(isinstance(v, _SCALARS) for v in values):
            raise _bad(name, f"values must be strings, numbers, booleans or None, got {list(values)}",
                       "Pass a label and map it to an object inside train_fn.")
        if len({(type(v), v) for v in values}) != len(values):
            raise _bad(name, f"values contain duplicates: {list(values)}", "List each value once.")
    return Hyperparameter(name, ptype, values, log)


class Searchspace:
    """A set of named hyperparameters, each ``name=(TYPE, values[, "log"])``.

    >>> sp = Searchspace(lr=("DOUBLE", [1e-4, 1e-1], "log"), layers=("INTEGER", [1, 4]))
    >>> sp.add("act", ("CATEGORICAL", ["relu", "tanh"]))
    Searchspace(
      lr: DOUBLE [0.0001, 0.1], log
      layers: INTEGER [1, 4]
      act: CATEGORICAL ['relu', 'tanh']
    )
    >>> point = sp.sample(seed=0)
    >>> sorted(point) == ["act", "layers", "lr"]
    True

    A hyperparameter may apply only while others hold certain values (:meth:`only_if`); a
    point then holds only its active hyperparameters.
    """

    def __init__(self, **hyperparameters: tuple) -> None:
        self._params: dict[str, Hyperparameter] = {}
        self._conditions = Conditions()
        self._order: list[Hyperparameter] | None = None  # parents first, made when first needed
        for name, spec in hyperparameters.items():
            self.add(name, spec)

    def add(self, name: str, spec: tuple) -> "Searchspace":
        """Add one hyperparameter; raises InvalidParameterError for a duplicate or bad spec."""
        if name in self._params:
            raise _bad(name, "the name is already in the searchspace", "Give each hyperparameter a unique name.")
        self._params[name] = _parse(name, spec)
        self._order = None
        return self

    def only_if(self, name: str, /, **parents: Any) -> "Searchspace":
        """Make ``name`` apply only while each parent holds one of the values given for it (a
        list, or one value); returns the searchspace, so calls chain. A parent may be conditional
        itself: then ``name`` applies only where the parent does. Where ``name`` is inactive, a
        trial leaves it out: ``train_fn`` uses its own default, and the value is in neither the
        trial's id nor ``best_params``. Parents are CATEGORICAL or DISCRETE. Raises
        InvalidParameterError for an unknown name, a value a parent cannot take, a range parent,
        a name conditioned on itself or a cycle.

        >>> sp = Searchspace(penalty=("CATEGORICAL", ["l2", "elasticnet"]),
        ...                  l1_ratio=("DOUBLE", [0.0, 1.0])).only_if("l1_ratio", penalty=["elasticnet"])
        >>> sp.contains({"penalty": "l2"}), sp.contains({"penalty": "l2", "l1_ratio": 0.5})
        (True, False)
        >>> [p for p in sp.grid(resolution=3)]  # one point for l2, three for elasticnet
        [{'penalty': 'l2'}, {'penalty': 'elasticnet', 'l1_ratio': 0.0}, {'penalty': 'elasticnet', 'l1_ratio': 0.5}, \
{'penalty': 'elasticnet', 'l1_ratio': 1.0}]
        """
        self._conditions.add(name, parents, self._params)
        self._order = None
        return self

    @property
    def conditions(self) -> Conditions:
        """Which hyperparameters apply only while others hold certain values (read it, do not change it)."""
        return self._conditions

    def _ordered(self) -> list[Hyperparameter]:
        """The hyperparameters with every parent before its children (else in the order added)."""
        if self._order is None:
            self._order = [self._params[n] for n in self._conditions.order(self.names)]
        return self._order

    @property
    def names(self) -> list[str]:
        return list(self._params)

    def __getitem__(self, name: str) -> Hyperparameter:
        return self._params[name]

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __iter__(self) -> Iterator[Hyperparameter]:
        return iter(self._params.values())

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Searchspace) and self.to_dict() == other.to_dict()

    def sample(self, rng: np.random.Generator | None = None, *, seed: int | None = None) -> dict[str, Any]:
        """Draw one point; pass a Generator to continue a stream, or a seed for a fixed draw."""
        return self.fill({}, rng if rng is not None else np.random.default_rng(seed))

    def fill(self, params: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """``params`` made a point: the values of the hyperparameters active in it kept, the active
        ones it lacks drawn, the inactive ones dropped (after a parent changed, say)."""
        out: dict[str, Any] = {}
        for hp in self._ordered():
            if self._conditions.active(hp.name, out):
                out[hp.name] = params[hp.name] if hp.name in params else hp.sample(rng)
        return {n: out[n] for n in self._params if n in out}

    def drop_inactive(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` without the hyperparameters that its own values make inactive, in the searchspace's order."""
        return {n: params[n] for n in self._params if n in params and self._conditions.active(n, params)}

    def grid(self, resolution: int | Mapping[str, int] = 5) -> Sequence[dict[str, Any]]:
        """Every point of the grid; continuous ranges get ``resolution`` points (per name or for all).
        A conditional searchspace's grid holds each branch over its active hyperparameters only."""
        res = self._resolutions(resolution)
        axes = {p.name: p.grid(res[p.name]) for p in self}
        parts = [Grid([n for n in self.names if n in b], [b[n] for n in self.names if n in b])
                 for b in self._conditions.branches(self._ordered(), axes)]
        return parts[0] if len(parts) == 1 else Branches(parts)

    def grid_size(self, resolution: int | Mapping[str, int] = 5) -> int:
        return len(self.grid(resolution))

    def points(self) -> Sequence[dict[str, Any]] | None:
        """Every point of a finite searchspace (one without DOUBLE), as a grid; None for one with
        a continuous dimension.

        >>> len(Searchspace(n=("INTEGER", [1, 4]), c=("CATEGORICAL", ["a", "b"])).points())
        8
        """
        if any(p.type == DOUBLE for p in self):
            return None
        return self.grid({p.name: int(p.high - p.low) + 1 if p.type == INTEGER else 1 for p in self})

    def _resolutions(self, resolution: int | Mapping[str, int]) -> dict[str, int]:
        if isinstance(resolution, Mapping):
            unknown = set(resolution) - set(self._params)
            if unknown:
                raise InvalidParameterError(
                    f"Grid resolution names unknown hyperparameters {sorted(unknown)}; known: {self.names}.")
            res = {n: resolution.get(n, 5) for n in self._params}
        else:
            res = {n: resolution for n in self._params}
        for name, r in res.items():
            if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 1:
                raise InvalidParameterError(
                    f"Grid resolution for '{name}' must be an int >= 1; got {r!r}.")
        return res

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` names every active hyperparameter once with a valid value, and no other."""
        return not self.mismatch(params)

    def mismatch(self, point: Mapping[str, Any]) -> list[str]:
        """How ``point`` fails to be a point of this searchspace, in words; empty when it is one."""
        active = [n for n in self._params if self._conditions.active(n, point)]
        missing = [n for n in active if n not in point]
        unknown = [n for n in point if n not in self._params]
        bad = [f"{n}={point[n]!r} ({p!r})" for n, p in self._params.items() if n in point and not p.contains(point[n])]
        inactive = [f"{n} ({self._conditions.describe(n)})" for n in self._params if n in point and n not in active]
        return [x for x in (missing and f"missing {missing}", unknown and f"unknown {unknown}",
                            bad and f"outside the searchspace: {', '.join(bad)}",
                            inactive and f"inactive here, leave out: {', '.join(inactive)}") if x]

    def to_dict(self) -> dict[str, dict]:
        return {p.name: {**p.to_dict(), **({"only_if": self._conditions.to_dict(p.name)}
                                           if p.name in self._conditions else {})} for p in self}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping]) -> "Searchspace":
        sp = cls()
        for name, d in data.items():
            spec = (d["type"], d["values"], "log") if d.get("log") else (d["type"], d["values"])
            sp.add(name, spec)
        for name, d in data.items():  # a journal written before conditions existed has none
            if d.get("only_if"):
                sp.only_if(name, **d["only_if"])
        return sp

    def __repr__(self) -> str:
        if not self._params:
            return "Searchspace()"
        body = "\n".join(f"  {p!r}" + (f"  {self._conditions.describe(p.name)}" if p.name in self._conditions else "")
                         for p in self)
        return f"Searchspace(\n{body}\n)"


class Grid(collections.abc.Sequence):
    """The points of a grid in :func:`itertools.product` order, computed from their index, so
    that a grid of billions of points costs no more than its axes.

    >>> g = Searchspace(x=("DISCRETE", [1, 2, 3]), c=("CATEGORICAL", ["a", "b"])).grid()
    >>> len(g), g[0], g[-1], g[3]
    (6, {'x': 1, 'c': 'a'}, {'x': 3, 'c': 'b'}, {'x': 2, 'c': 'b'})
    """

    def __init__(self, names: Sequence[str], axes: Sequence[Sequence[Any]]) -> None:
        self._names, self._axes = list(names), [list(a) for a in axes]
        self._len = math.prod(len(a) for a in self._axes)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("a grid is indexed one point at a time")
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"grid index {index} out of range for {self._len} points")
        values = []
        for axis in reversed(self._axes):  # the last name varies fastest
            index, i = divmod(index, len(axis))
            values.append(axis[i])
        return dict(zip(self._names, reversed(values)))
