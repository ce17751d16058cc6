"""Conditional hyperparameters: one that applies only while others hold certain values
(``Searchspace.only_if``), as Optuna's define-by-run spaces, Hyperopt's nested choices and
ConfigSpace's conditions express them.

A hyperparameter is *active* in a point when each of its parents is active there and holds one
of the values its condition allows. An inactive one is left out of the point altogether, so it
never reaches ``train_fn``, a trial's id or ``best_params``. Parents are CATEGORICAL or DISCRETE:
a condition on a range would split it at arbitrary values (add a CATEGORICAL switch instead).
"""

from __future__ import annotations

import bisect
import collections.abc
import itertools
import numbers
from typing import Any, Mapping, Protocol, Sequence

from maggy.exceptions import InvalidParameterError


class Hyperparameter(Protocol):
    """What conditions read of a dimension (``maggy.search.searchspace.Hyperparameter``, which
    imports this module)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def values(self) -> tuple: ...

    @property
    def is_range(self) -> bool: ...

    def contains(self, value: Any) -> bool: ...


def _same(a: Any, b: Any) -> bool:
    """Equal values of one kind: numbers compare across int and float, other values by type too."""
    def number(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)
    return a == b and (type(a) is type(b) or (number(a) and number(b)))


def _bad(child: str, problem: str, fix: str) -> InvalidParameterError:
    return InvalidParameterError(f"Searchspace condition on '{child}': {problem}. {fix}")


class Conditions:
    """The parents of each conditional hyperparameter and the values of each that activate it.

    >>> from maggy import Searchspace
    >>> sp = Searchspace(opt=("CATEGORICAL", ["sgd", "adam"]), momentum=("DOUBLE", [0.0, 0.99]))
    >>> c = sp.only_if("momentum", opt=["sgd"]).conditions
    >>> c.active("momentum", {"opt": "sgd"}), c.active("momentum", {"opt": "adam"}), c.describe("momentum")
    (True, False, "only if opt in ['sgd']")
    """

    def __init__(self) -> None:
        self._parents: dict[str, dict[str, tuple]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._parents

    def __iter__(self) -> collections.abc.Iterator[str]:
        return iter(self._parents)

    def __bool__(self) -> bool:
        return bool(self._parents)

    def add(self, child: str, parents: Mapping[str, Any], space: Mapping[str, Hyperparameter]) -> None:
        """Make ``child`` apply only while each parent holds one of its given values (a list, or one
        value); checks everything before it stores anything. Raises InvalidParameterError."""
        example = "e.g. only_if('l1_ratio', penalty=['elasticnet'])"
        if child not in space:
            raise _bad(child, f"no such hyperparameter (the searchspace has {list(space)})",
                       "Add it to the searchspace before giving it a condition.")
        if not parents:
            raise _bad(child, "no parent given", f"Name each parent with the values that activate it, {example}.")
        given = self._parents.get(child, {})
        checked: dict[str, tuple] = {}
        for parent, allowed in parents.items():
            if parent == child:
                raise _bad(child, "it is conditioned on itself", "Name another hyperparameter as its parent.")
            if parent not in space:
                raise _bad(child, f"unknown parent '{parent}' (the searchspace has {list(space)})",
                           "Add the parent to the searchspace first, or correct its name.")
            hp = space[parent]
            if hp.is_range:
                raise _bad(child, f"the parent '{parent}' is a {hp.type} range, and conditions take CATEGORICAL "
                                  "or DISCRETE parents, whose values can be listed",
                           f"Make '{parent}' CATEGORICAL or DISCRETE, or add a CATEGORICAL switch as the parent.")
            if parent in given:
                raise _bad(child, f"it already depends on '{parent}' ({self.describe(child)})",
                           f"Give all the values of '{parent}' that activate it in one only_if call.")
            values = ((allowed,) if isinstance(allowed, (str, bytes)) or not isinstance(allowed, collections.abc.Iterable)
                      else tuple(allowed))
            if not values:
                raise _bad(child, f"no values given for '{parent}'", f"List the values that activate it, {example}.")
            wrong = [v for v in values if not hp.contains(v)]
            if wrong:
                raise _bad(child, f"'{parent}' cannot take {wrong} (its values: {list(hp.values)})",
                           f"Use values of '{parent}'.")
            cycle = self._path(parent, child)
            if cycle is not None:
                raise _bad(child, f"a cycle: {' -> '.join([child, *cycle])}",
                           "Conditions must form a tree of parents; drop one of them.")
            checked[parent] = values
        self._parents[child] = {**given, **checked}

    def _path(self, start: str, goal: str) -> list[str] | None:
        """The chain of parents from ``start`` up to ``goal`` (both included), or None."""
        if start == goal:
            return [goal]
        for parent in self._parents.get(start, {}):
            rest = self._path(parent, goal)
            if rest is not None:
                return [start, *rest]
        return None

    def active(self, name: str, point: Mapping[str, Any]) -> bool:
        """Whether ``name`` applies in ``point``: each parent is active there and holds an allowed value."""
        return all(p in point and any(_same(point[p], v) for v in allowed) and self.active(p, point)
                   for p, allowed in self._parents.get(name, {}).items())

    def order(self, names: Sequence[str]) -> list[str]:
        """``names`` with every parent before its children, otherwise in the given order."""
        out: list[str] = []
        while len(out) < len(names):
            out.append(next(n for n in names if n not in out and all(p in out for p in self._parents.get(n, {}))))
        return out

    def describe(self, name: str) -> str:
        return "only if " + " and ".join(f"{p} in {list(v)}" for p, v in self._parents[name].items())

    def to_dict(self, name: str) -> dict[str, list]:
        return {p: list(v) for p, v in self._parents[name].items()}

    def branches(self, order: Sequence[Hyperparameter], axes: Mapping[str, list]) -> list[dict[str, list]]:
        """The grid's branches: for each way the parents' values decide which hyperparameters are
        active, the axes of those (a parent's cut to the values that decide alike). ``order``
        puts parents first. Each branch is a product of its own axes, so the grid holds the sum
        of the branches' products, not the product of all axes."""
        deciding = {p for ps in self._parents.values() for p in ps}
        out: list[dict[str, list]] = []

        def walk(start: int, chosen: dict[str, Any], taken: dict[str, list]) -> None:
            for i in range(start, len(order)):
                hp = order[i]
                if not self.active(hp.name, chosen):
                    continue
                if hp.name in deciding:  # one branch per group of values that activate the same children
                    for group in self._groups(hp.name, axes[hp.name]):
                        walk(i + 1, {**chosen, hp.name: group[0]}, {**taken, hp.name: group})
                    return
                taken = {**taken, hp.name: axes[hp.name]}
            out.append(taken)

        walk(0, {}, {})
        return out

    def _groups(self, parent: str, values: list) -> list[list]:
        """``values`` of ``parent`` grouped by the conditions they meet, in their order."""
        tests = [allowed for ps in self._parents.values() for p, allowed in ps.items() if p == parent]
        groups: dict[tuple, list] = {}
        for v in values:
            groups.setdefault(tuple(any(_same(v, a) for a in allowed) for allowed in tests), []).append(v)
        return list(groups.values())


class Branches(collections.abc.Sequence):
    """Grids one after another as one sequence: a conditional searchspace's grid, one per branch."""

    def __init__(self, parts: Sequence[Sequence[dict[str, Any]]]) -> None:
        self._parts = list(parts)
        self._ends = list(itertools.accumulate(len(p) for p in self._parts))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("a grid is indexed one point at a time")
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"grid index {index} out of range for {len(self)} points")
        k = bisect.bisect_right(self._ends, index)
        return self._parts[k][index - (self._ends[k - 1] if k else 0)]
