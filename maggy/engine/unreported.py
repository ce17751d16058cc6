"""A warning when the trial-stopping policy the user chose can never act: the first ``es_min``
trials ended without reporting a single metric while they ran."""

from __future__ import annotations

import warnings

from maggy.callbacks import Callback
from maggy.exceptions import MaggyWarning
from maggy.trial import FrozenTrial


class UnreportedMetrics(Callback):
    """Watches trial ends for the driver; warns once, and stops looking at the first trial that
    reported a metric."""

    def __init__(self, es_policy: str, es_min: int) -> None:
        self.es_policy = es_policy
        self.es_min = es_min
        self._without: int | None = 0  # trials ended without a report, until one reports

    def on_trial_end(self, trial: FrozenTrial) -> None:
        if self._without is None:
            return
        if trial.history:
            self._without = None
            return
        self._without += 1
        if self._without >= self.es_min:
            self._without = None
            warnings.warn(
                f"es_policy={self.es_policy!r} has nothing to act on: the first {self.es_min} trials reported no "
                "metric while they ran. Call reporter.broadcast(metric, step) every epoch in train_fn, or pass "
                "es_policy='none'.", MaggyWarning, stacklevel=2)
