"""What counts as a metric value: anything ``float()`` takes but text and booleans, so that numpy
scalars, 0-d arrays and one-element tensors (torch, TensorFlow, JAX) are results as they are.
A NaN or infinite value is no bug in ``train_fn`` but a trial that diverged (:class:`Diverged`)."""

from __future__ import annotations

import math
from typing import Any

from maggy.exceptions import Diverged


def as_number(value: Any) -> float | None:
    """``value`` as a float, or None when it is no number (text, a bool, None, several values).

    >>> import numpy as np
    >>> as_number(np.float32(0.5)), as_number(np.array(2)), as_number(np.array([3])), as_number("0.5")
    (0.5, 2.0, 3.0, None)
    """
    if value is None or isinstance(value, (str, bytes, bool)):
        return None
    try:
        # .item() takes numpy scalars and arrays, and tensors (also on a GPU) of one element
        value = value.item() if callable(getattr(value, "item", None)) else value
        return None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        return None


def finite(value: float, what: str) -> float:
    """``value`` when finite; else :class:`Diverged`, naming ``what`` had it.

    >>> finite(float("nan"), "the metric")
    Traceback (most recent call last):
    ...
    maggy.exceptions.Diverged: the metric is nan: the trial diverged (a NaN or infinite loss), which fails this trial only
    """
    if not math.isfinite(value):
        raise Diverged(f"{what} is {value}: the trial diverged (a NaN or infinite loss), which fails this trial only")
    return value
