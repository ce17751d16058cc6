"""LightGBM: report every boosting round to maggy, and stop boosting when maggy says so.

``MaggyCallback(reporter, metric="binary_logloss", valid_name="valid_0")`` is a callback for
``lightgbm.train`` (and the scikit-learn API's ``callbacks=``). ``valid_name`` is the name of the
validation set (``valid_names=``; LightGBM calls the first ``valid_0``) and ``metric`` the name of
the metric LightGBM logs for it. The step is the boosting round (0, 1, ...); when maggy stops the
trial, boosting ends after that round as LightGBM's own early stopping ends it (the booster keeps
its trees, ``booster.current_iteration()`` says how far it got), and the trial is EARLY_STOPPED::

    def train_fn(learning_rate, num_leaves, reporter):
        from maggy.integrations.lightgbm import MaggyCallback
        cb = MaggyCallback(reporter, metric="binary_logloss")
        booster = lightgbm.train({"objective": "binary", "learning_rate": learning_rate, "num_leaves": num_leaves},
                                 train_set, num_boost_round=200, valid_sets=[valid_set], callbacks=[cb])
        return cb.last

    lagom(train_fn, searchspace, direction="min")

LightGBM is imported when a callback stops boosting, never by maggy itself.
"""

from __future__ import annotations

from typing import Any

from maggy.exceptions import MetricNotLogged
from maggy.integrations._common import Metric, Reports

__all__ = ["MaggyCallback"]


class MaggyCallback(Reports):
    """Reports ``metric`` of the validation set ``valid_name`` after every boosting round and
    stops boosting when maggy stops the trial; ``direction`` overrides what the name says."""

    def __init__(self, reporter: Any, metric: str = "binary_logloss", valid_name: str = "valid_0",
                 direction: str | None = None) -> None:
        #: After LightGBM's callbacks that log and record a round (order 10 and 20), before its early stopping (30);
        #: an attribute of the instance, or lightgbm.train numbers it by its place in the list.
        self.order = 25
        self.before_iteration = False
        self.valid_name = valid_name
        self.metric = Metric(reporter, metric, f"LightGBM (validation set {valid_name!r})", direction)

    def __call__(self, env: Any) -> None:
        # (data name, metric name, value, higher is better[, stdv under lightgbm.cv])
        results = env.evaluation_result_list or []
        if not any(entry[0] == self.valid_name for entry in results):
            raise MetricNotLogged(
                f"MaggyCallback(valid_name={self.valid_name!r}): LightGBM logged no validation set {self.valid_name!r}; "
                f"it logged {[f'{entry[0]}: {entry[1]}' for entry in results]}. Pass valid_sets= to lightgbm.train, "
                "and its name (valid_names=) as valid_name=.")
        logged = {entry[1]: entry[2] for entry in results if entry[0] == self.valid_name}
        if self.metric.report(logged, step=env.iteration):
            from lightgbm.callback import EarlyStopException

            raise EarlyStopException(env.iteration, results)
