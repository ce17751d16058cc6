"""What an experiment optimises: one metric, or several at once, each with its direction.

``optimization_key`` and ``direction`` name one objective (a string each) or several (a list
each, one direction per key). With several there is no single best trial: the result is the
Pareto front, the trials no other trial beats on every objective.

>>> o = Objectives.of(["accuracy", "latency"], ["max", "minimize"])
>>> o.multi, o.keys, [str(d) for d in o.directions]
(True, ('accuracy', 'latency'), ['max', 'min'])
>>> o.scores((0.9, 20.0))
(0.9, -20.0)
>>> Objectives.of("metric", "max").multi
False
>>> Objectives.of(["a", "b"], "max")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
maggy.exceptions.InvalidParameterError: The 'direction' parameter must be a list of one direction per ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from maggy.search.direction import Direction
from maggy.validation import check_choice, check_str, invalid

#: The words of Optuna, Ray Tune and Hyperopt that mean the same as ours.
DIRECTION_ALIASES = {"maximize": "max", "maximise": "max", "minimize": "min", "minimise": "min"}


@dataclass(frozen=True)
class Objectives:
    """The metrics an experiment optimises (the first one is the one a trial reports as it
    runs), and whether each is maximised or minimised."""

    keys: tuple[str, ...]
    directions: tuple[Direction, ...]

    @classmethod
    def of(cls, optimization_key: str | Sequence[str], direction: str | Sequence[str] | None) -> "Objectives":
        """Validated objectives from the config's ``optimization_key`` and ``direction``: both
        strings, or lists of the same length. A ``direction`` of None is what each key's name
        says (a loss falls: ``"min"``), else ``"max"``. Raises InvalidParameterError naming the fix.

        >>> [str(d) for d in Objectives.of(["val_loss", "accuracy", "latency"], None).directions]
        ['min', 'max', 'max']
        """
        if direction is None:
            direction = _by_name(optimization_key)
        if isinstance(optimization_key, str):
            if not isinstance(direction, str) and not isinstance(direction, Direction):
                raise invalid("direction", direction, "'max' or 'min' for one optimization_key",
                              "For several objectives make optimization_key a list too, e.g. "
                              "optimization_key=['accuracy', 'latency'], direction=['max', 'min'].")
            return cls((check_str("optimization_key", optimization_key),), (_direction("direction", direction),))
        if not isinstance(optimization_key, (list, tuple)) or not optimization_key:
            raise invalid("optimization_key", optimization_key, "a metric's name or a non-empty list of names",
                          "e.g. optimization_key='accuracy' or optimization_key=['accuracy', 'latency'].")
        keys = tuple(check_str(f"optimization_key[{i}]", k) for i, k in enumerate(optimization_key))
        if len(set(keys)) < len(keys):
            raise invalid("optimization_key", list(keys), "distinct names", "Name each objective once.")
        if isinstance(direction, str) or not isinstance(direction, (list, tuple)) or len(direction) != len(keys):
            raise invalid("direction", direction,
                          f"a list of one direction per optimization_key ({len(keys)} keys: {list(keys)})",
                          f"e.g. direction={['max', 'min'][:len(keys)] + ['max'] * (len(keys) - 2)}.")
        return cls(keys, tuple(_direction(f"direction[{i}]", d) for i, d in enumerate(direction)))

    @property
    def multi(self) -> bool:
        """Whether there are several objectives (and so a Pareto front, no single best)."""
        return len(self.keys) > 1

    @property
    def primary(self) -> str:
        """The first objective: what a trial's ``metric`` and its reported history hold."""
        return self.keys[0]

    def scores(self, values: Sequence[float]) -> tuple[float, ...]:
        """``values`` (one per key) oriented so that larger is better on every objective."""
        return tuple(d.sign * float(v) for d, v in zip(self.directions, values))

    def split(self, metric: float | None, extra: Mapping[str, Any]) -> tuple[tuple[float, ...] | None, dict[str, Any]]:
        """A run's value of each objective (None with one objective, or when the run has no
        metric), and its other extras: the worker sends the objectives after the first among
        the extras (see ``parse_return``).

        >>> Objectives.of(["acc", "size"], ["max", "min"]).split(0.9, {"size": 3.0, "note": "x"})
        ((0.9, 3.0), {'note': 'x'})
        """
        rest = {k: v for k, v in extra.items() if k not in self.keys[1:]}
        if not self.multi or metric is None or any(k not in extra for k in self.keys[1:]):
            return None, rest if self.multi else dict(extra)
        return (float(metric), *(float(extra[k]) for k in self.keys[1:])), rest

    def config(self) -> dict[str, Any]:
        """``optimization_key`` and ``direction`` as the journal and result.json keep them: strings
        for one objective, lists for several."""
        if not self.multi:
            return {"optimization_key": self.keys[0], "direction": str(self.directions[0])}
        return {"optimization_key": list(self.keys), "direction": [str(d) for d in self.directions]}

    def describe(self) -> str:
        """'accuracy (max), latency (min)'."""
        return ", ".join(f"{k} ({d})" for k, d in zip(self.keys, self.directions))


def _by_name(optimization_key: Any) -> str | list[str]:
    """The directions the keys' names say, else max; a key that is not a name gets max here and
    is refused by the checks that follow."""
    def one(key: Any) -> str:
        return str(Direction.of_metric(key) or Direction.MAX) if isinstance(key, str) else "max"
    return [one(k) for k in optimization_key] if isinstance(optimization_key, (list, tuple)) else one(optimization_key)


def _direction(name: str, value: Any) -> Direction:
    return Direction(check_choice(name, value, ("max", "min"), DIRECTION_ALIASES))


class NoSingleBestError(AttributeError):
    """A multi-objective result was asked for its single best trial, which it does not have."""

    def __init__(self, objectives: Objectives, what: str) -> None:
        super().__init__(
            f"result.{what}: this experiment has {len(objectives.keys)} objectives ({objectives.describe()}), so no "
            "single trial is best. result.pareto_front lists the trials no other trial beats on every objective; "
            "pick one of them by the trade-off you want.")
