"""The successive-halving rule, shared by the ASHA optimizer and the ASHA stopping policy.

A rung keeps the top ``1/eta`` of the trials that reached it (rounded down), best first.

>>> top_of_rung({"a": 0.9, "b": 0.1, "c": 0.5}, eta=3)
['a']
>>> top_of_rung({"a": 0.9, "b": 0.1}, eta=3)
[]
"""

from __future__ import annotations

from typing import Mapping, Union

import numpy as np

from maggy.search.pareto import select_best


def top_of_rung(scores: Mapping[str, Union[float, tuple[float, ...]]], eta: int) -> list[str]:
    """Ids of the trials in the top ``1/eta`` of ``scores`` (larger is better), best first. With
    several objectives (tuples), by non-dominated sorting and hypervolume, as MO-ASHA promotes.

    >>> top_of_rung({"a": (1.0, 0.0), "b": (0.0, 1.0), "c": (0.5, 0.5), "d": (0.1, 0.1)}, eta=2)
    ['c', 'a']
    """
    ids = list(scores)
    points = np.array([np.atleast_1d(scores[t]) for t in ids], dtype=float)
    return [ids[i] for i in select_best(points, len(ids) // eta)] if ids else []
