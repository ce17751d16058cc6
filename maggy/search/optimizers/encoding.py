"""Maps searchspace points to numbers that models work with, and back.

Ranges (DOUBLE, INTEGER) map to the unit interval, on a log scale where the dimension has one;
an INTEGER value owns the slice ``[v - 0.5, v + 0.5]`` so that every value is equally wide.
DISCRETE numbers map to their rank in the unit interval; CATEGORICAL values to a one-hot block.
A hyperparameter inactive in a point (a conditional one) gets fixed values outside every active
one: :data:`INACTIVE` for a number, an all-zero block for a categorical.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from maggy.search.searchspace import CATEGORICAL, DISCRETE, INTEGER, Hyperparameter, Searchspace

#: The coordinate of an inactive DOUBLE, INTEGER or DISCRETE hyperparameter: outside [0, 1].
INACTIVE = -1.0


def _bounds(hp: Hyperparameter) -> tuple[float, float]:
    low, high = (hp.low - 0.5, hp.high + 0.5) if hp.type == INTEGER else (hp.low, hp.high)
    if hp.log:  # log ranges have low >= 1 for INTEGER and low > 0 for DOUBLE, so this is defined
        low, high = math.log(low), math.log(high)
    return low, high


def to_unit(hp: Hyperparameter, value: Any) -> float:
    """A DOUBLE or INTEGER value in [0, 1]."""
    low, high = _bounds(hp)
    v = math.log(value) if hp.log else float(value)
    return min(1.0, max(0.0, (v - low) / (high - low)))


def unit_slot(hp: Hyperparameter, value: int) -> tuple[float, float]:
    """The slice of [0, 1] that an INTEGER value owns (``from_unit`` rounds it to ``value``).

    >>> from maggy import Searchspace
    >>> [hp] = Searchspace(n=("INTEGER", [1, 4]))
    >>> unit_slot(hp, 2)
    (0.25, 0.5)
    """
    low, high = _bounds(hp)
    edges = (value - 0.5, value + 0.5)
    if hp.log:
        edges = (math.log(edges[0]), math.log(edges[1]))
    return (edges[0] - low) / (high - low), (edges[1] - low) / (high - low)


def from_unit(hp: Hyperparameter, u: float) -> Any:
    """The DOUBLE or INTEGER value at ``u`` in [0, 1] (clipped to the range, integers rounded)."""
    low, high = _bounds(hp)
    v = low + min(1.0, max(0.0, float(u))) * (high - low)
    if hp.log:
        v = math.exp(v)
    if hp.type == INTEGER:
        return int(min(hp.high, max(hp.low, round(v))))
    return float(min(hp.high, max(hp.low, v)))


class VectorEncoder:
    """Points as vectors in the unit cube, for models such as Gaussian processes."""

    def __init__(self, searchspace: Searchspace) -> None:
        self.searchspace = searchspace
        self.slices: list[tuple[Hyperparameter, slice]] = []
        i = 0
        for hp in searchspace:
            width = len(hp.values) if hp.type == CATEGORICAL else 1
            self.slices.append((hp, slice(i, i + width)))
            i += width
        self.dims = i
        #: Which vector entries are continuous (refinable by gradient steps), not one-hot.
        self.continuous = np.zeros(self.dims, dtype=bool)
        for hp, sl in self.slices:
            self.continuous[sl] = hp.type != CATEGORICAL

    def encode(self, params: dict[str, Any]) -> np.ndarray:
        x = np.zeros(self.dims)
        for hp, sl in self.slices:
            if hp.name not in params:  # inactive
                x[sl] = 0.0 if hp.type == CATEGORICAL else INACTIVE
                continue
            v = params[hp.name]
            if hp.type == CATEGORICAL:
                x[sl.start + hp.values.index(v)] = 1.0
            elif hp.type == DISCRETE:
                x[sl.start] = _rank(hp, v)
            else:
                x[sl.start] = to_unit(hp, v)
        return x

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        params = {}
        for hp, sl in self.slices:
            if hp.type == CATEGORICAL:
                params[hp.name] = hp.values[int(np.argmax(x[sl]))]
            elif hp.type == DISCRETE:
                ranks = [_rank(hp, v) for v in hp.values]
                params[hp.name] = hp.values[int(np.argmin(np.abs(np.array(ranks) - x[sl.start])))]
            else:
                params[hp.name] = from_unit(hp, x[sl.start])
        return self.searchspace.drop_inactive(params)

    def impute(self, x: np.ndarray) -> np.ndarray:
        """``x`` (a vector or rows of them) with the coordinates of the hyperparameters its own
        values make inactive set as :meth:`encode` sets them, so that a model compares it with
        the observations as the point it decodes to."""
        if not self.searchspace.conditions:
            return x
        out = np.array(x, dtype=float)
        blank = self.encode({})  # every hyperparameter inactive
        for row in np.atleast_2d(out):  # views into out
            active = self.decode(row)
            for hp, sl in self.slices:
                if hp.name not in active:
                    row[sl] = blank[sl]
        return out


def _rank(hp: Hyperparameter, value: Any) -> float:
    order = sorted(hp.values)
    return 0.5 if len(order) == 1 else order.index(value) / (len(order) - 1)
