"""Which way the metric is better.

>>> Direction("max").better(0.9, 0.5), Direction.MIN.better(0.9, 0.5), Direction.MIN.sign
(True, False, -1.0)
>>> f"{Direction.MAX} {Direction.MIN!s}"
'max min'
"""

from __future__ import annotations

import enum


class Direction(str, enum.Enum):
    MAX = "max"
    MIN = "min"

    def __str__(self) -> str:  # "max", as the user wrote it, in messages and MLflow's params
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def sign(self) -> float:
        """+1 for MAX, -1 for MIN: ``sign * metric`` is larger when better."""
        return 1.0 if self is Direction.MAX else -1.0

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self is Direction.MAX else a < b
