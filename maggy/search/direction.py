"""Which way the metric is better.

>>> Direction("max").better(0.9, 0.5), Direction.MIN.better(0.9, 0.5), Direction.MIN.sign
(True, False, -1.0)
"""

from __future__ import annotations

import enum


class Direction(str, enum.Enum):
    MAX = "max"
    MIN = "min"

    @property
    def sign(self) -> float:
        """+1 for MAX, -1 for MIN: ``sign * metric`` is larger when better."""
        return 1.0 if self is Direction.MAX else -1.0

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self is Direction.MAX else a < b
