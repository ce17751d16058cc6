"""The successive-halving rule, shared by the ASHA optimizer and the ASHA stopping policy.

A rung keeps the top ``1/eta`` of the trials that reached it (rounded down), best first.

>>> top_of_rung({"a": 0.9, "b": 0.1, "c": 0.5}, eta=3)
['a']
>>> top_of_rung({"a": 0.9, "b": 0.1}, eta=3)
[]
"""

from __future__ import annotations

from typing import Mapping


def top_of_rung(scores: Mapping[str, float], eta: int) -> list[str]:
    """Ids of the trials in the top ``1/eta`` of ``scores`` (larger is better), best first."""
    return sorted(scores, key=lambda tid: -scores[tid])[:len(scores) // eta]
