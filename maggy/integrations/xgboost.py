"""XGBoost: report every boosting round to maggy, and stop boosting when maggy says so.

``MaggyCallback(reporter, metric="valid-logloss")`` is an ``xgboost.callback.TrainingCallback``
for ``xgboost.train`` (and the scikit-learn API's ``callbacks=``). The metric is named
``<eval name>-<metric>``, as in XGBoost's ``evals_result``: ``evals=[(dvalid, "valid")]`` with
``eval_metric="logloss"`` logs ``valid-logloss``. The step is the boosting round (0, 1, ...); when
maggy stops the trial, boosting ends after that round and ``xgboost.train`` returns the booster
(``booster.num_boosted_rounds()`` says how far it got), and the trial is EARLY_STOPPED::

    def train_fn(eta, max_depth, reporter):
        from maggy.integrations.xgboost import MaggyCallback
        cb = MaggyCallback(reporter, metric="valid-logloss")
        booster = xgboost.train({"eta": eta, "max_depth": max_depth, "eval_metric": "logloss"}, dtrain,
                                num_boost_round=200, evals=[(dvalid, "valid")], callbacks=[cb])
        return cb.last  # the last round's valid-logloss

    lagom(train_fn, searchspace, direction="min")  # a loss: lower is better

XGBoost is imported when ``MaggyCallback`` is first used, never by maggy itself.
"""

from __future__ import annotations

from typing import Any

from maggy.integrations._common import Metric, Reports, lazy_callback


def _callback_class() -> type:
    from xgboost.callback import TrainingCallback

    class MaggyCallback(Reports, TrainingCallback):
        """Reports ``metric`` (``<eval name>-<metric>``) after every boosting round and stops
        boosting when maggy stops the trial; ``direction`` overrides what the name says."""

        def __init__(self, reporter: Any, metric: str = "valid-logloss", direction: str | None = None) -> None:
            super().__init__()
            self.metric = Metric(reporter, metric, "XGBoost", direction)

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            logged = {f"{data}-{name}": _last(values) for data, metrics in evals_log.items()
                      for name, values in metrics.items()}
            return self.metric.report(logged, step=epoch)

    return MaggyCallback


__getattr__ = lazy_callback(__name__, _callback_class)


def _last(values: list) -> float:
    """The latest value of a metric's log; ``xgboost.cv`` logs (mean, std) pairs: their mean."""
    value = values[-1]
    return value[0] if isinstance(value, tuple) else value
