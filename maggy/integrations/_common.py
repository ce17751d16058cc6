"""What every framework callback shares: the metric found by name in what the framework logged,
the report that turns maggy's stop into the framework's, and the direction the name says.

Each callback (``maggy.integrations.xgboost``, ``.lightgbm``, ``.lightning``, ``.keras``,
``.transformers``) only says where its framework keeps the logged values, which step it is at and
how it stops; :class:`Metric` does the rest. In a gang every rank reports (``reporter.broadcast``
is a collective that shares a stop, and only rank 0's points reach the driver), so every rank
stops at the same step; only rank 0 writes checkpoints (:attr:`Metric.chief`).

>>> from maggy.runtime.reporter import Reporter
>>> reporter = Reporter("t", {}, direction="min")
>>> m = Metric(reporter, "valid-logloss", "XGBoost")
>>> m.direction, m.report({"valid-logloss": 0.5, "train-logloss": 0.4}, step=0), reporter.last
(<Direction.MIN: 'min'>, False, (0, 0.5))
>>> reporter.request_stop()
>>> m.report({"valid-logloss": 0.4}, step=1), m.stopped, m.last
(True, True, 0.4)
>>> m.report({"valid-auc": 0.9}, step=2)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
maggy.exceptions.MetricNotLogged: ...: XGBoost logged no metric 'valid-logloss'; it logged ['valid-auc']...
>>> Metric(Reporter("t", {}, direction="max"), "valid-logloss", "XGBoost")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
maggy.exceptions.DirectionMismatch: ... this experiment maximises ...: pass direction='min' to lagom, ...
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from maggy.exceptions import DirectionMismatch, EarlyStopped, InvalidParameterError, MetricNotLogged
from maggy.search.direction import Direction


class Metric:
    """One callback's metric: found by ``name`` in what the framework logged, reported to the
    trial's ``reporter``, and whether maggy has told the trial to stop.

    Args:
        reporter: the ``reporter`` that ``train_fn`` received.
        name: the metric's name as the framework logs it.
        framework: the framework's name, for messages.
        direction: ``"min"`` or ``"max"``; default: what the name says (:meth:`Direction.of_metric`),
            None when it says nothing. Where the experiment optimises the other way (lagom's
            ``direction``, by default what ``optimization_key``'s name says, else ``"max"``), the
            trial fails with :class:`DirectionMismatch`, naming the fix: early stopping and the
            optimizer would otherwise keep the worst trials.
    """

    def __init__(self, reporter: Any, name: str, framework: str, direction: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(f"MaggyCallback(metric=...) needs the name of a metric {framework} logs; got {name!r}.")
        if not hasattr(reporter, "broadcast"):
            raise InvalidParameterError(
                f"MaggyCallback's first argument is the reporter that train_fn receives (def train_fn(..., reporter)); "
                f"got {type(reporter).__name__}.")
        self.reporter = reporter
        self.name = name
        self.framework = framework
        self.direction = Direction(direction) if direction is not None else Direction.of_metric(name)
        self._check_direction(direction is not None)
        #: Whether maggy told the trial to stop (the framework was asked to stop then).
        self.stopped = False
        #: The last value reported: the framework's own, as it logged it.
        self.last: float | None = None

    def _check_direction(self, stated: bool) -> None:
        experiment = getattr(self.reporter, "direction", None)
        if self.direction is None or experiment is None or str(self.direction) == experiment:
            return
        better = "lower" if self.direction is Direction.MIN else "higher"
        raise DirectionMismatch(
            f"MaggyCallback(metric={self.name!r}) reports a metric for which {better} is better "
            f"({'as stated' if stated else 'as its name says'}), but this experiment "
            f"{'maximises' if experiment == 'max' else 'minimises'} what its trials report: pass "
            f"direction={str(self.direction)!r} to lagom, or direction={experiment!r} to MaggyCallback if "
            f"{'that was a slip' if stated else 'the name misleads'}.")

    @property
    def chief(self) -> bool:
        """Whether this worker writes the trial's checkpoints: rank 0 of a gang, or a lone worker."""
        return getattr(self.reporter, "rank", 0) == 0

    def find(self, logged: Mapping[str, Any]) -> Any:
        """The metric's value in ``logged``; :class:`MetricNotLogged`, listing what was logged, when absent."""
        if self.name not in logged:
            raise MetricNotLogged(
                f"MaggyCallback(metric={self.name!r}): {self.framework} logged no metric {self.name!r}; it logged "
                f"{sorted(logged)}. Pass one of them as metric=.")
        return logged[self.name]

    def report(self, logged: Mapping[str, Any], step: int) -> bool:
        """Report the metric found in ``logged`` at ``step``; True when the trial must stop (the
        framework's stop is the caller's: its fit then returns normally, and maggy records the
        trial as EARLY_STOPPED all the same)."""
        value = self.find(logged)
        try:
            self.reporter.broadcast(value, step=int(step))
        except EarlyStopped:
            self.stopped = True
        self.last = float(value)
        return self.stopped


class Reports:
    """What every callback shows of its :class:`Metric` (``self.metric``)."""

    metric: Metric

    @property
    def last(self) -> float | None:
        """The metric's last value, as the framework logged it: handy to return from ``train_fn``."""
        return self.metric.last

    @property
    def stopped(self) -> bool:
        """Whether maggy stopped this trial (the framework was asked to stop then)."""
        return self.metric.stopped


def lazy_callback(module: str, build: Callable[[], type]) -> Callable[[str], Any]:
    """A module's ``__getattr__`` that builds its ``MaggyCallback`` (a subclass of the framework's
    callback class) on first use, so that the framework is imported only then and never by maggy."""
    built: list[type] = []

    def __getattr__(name: str) -> Any:
        if name != "MaggyCallback":
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if not built:
            cls = build()
            cls.__module__, cls.__qualname__ = module, name
            built.append(cls)
        return built[0]
    return __getattr__
