"""One candidate of :class:`maggy.sklearn.SearchCV` on a worker: its folds, one after another.

Each fold is fitted and scored as ``GridSearchCV`` does it (a clone of the estimator with the
candidate's parameters, the same splits, the same scorer), and reported as a step: the mean of
the scores so far, so that an early-stopping policy compares candidates after the same folds and
stops a poor one before it fits the rest. A stopped candidate returns the folds it ran: each
fold's score and times are columns of the trial table (``split0_test_score``, ``split0_fit_time``
...), as scikit-learn names them.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from maggy.exceptions import EarlyStopped


class Candidate:
    """``train_fn`` of a SearchCV: ``Candidate(...)(reporter=..., **params)`` fits and scores
    ``estimator`` with ``params`` on each of ``splits`` (index arrays into ``x`` and ``y``)."""

    def __init__(self, estimator: Any, x: Any, y: Any, splits: Sequence[tuple[Any, Any]], scorer: Any,
                 fit_params: dict[str, Any]) -> None:
        self.estimator = estimator
        self.x = x
        self.y = y
        self.splits = list(splits)
        self.scorer = scorer
        self.fit_params = fit_params

    def __call__(self, reporter: Any, **params: Any) -> dict[str, Any]:
        import numpy as np
        from sklearn.base import clone
        from sklearn.utils.metaestimators import _safe_split

        scores: list[float] = []
        fit_times: list[float] = []
        score_times: list[float] = []
        for step, (train, test) in enumerate(self.splits):
            estimator = clone(self.estimator).set_params(**clone(params, safe=False))
            x_train, y_train = _safe_split(estimator, self.x, self.y, train)
            x_test, y_test = _safe_split(estimator, self.x, self.y, test, train)
            start = time.perf_counter()
            estimator.fit(x_train, y_train, **_fold_params(self.x, self.fit_params, train))
            fit_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            scores.append(float(self.scorer(estimator, x_test, y_test)))
            score_times.append(time.perf_counter() - start)
            try:
                reporter.broadcast(np.average(scores), step=step)
            except EarlyStopped:
                break  # the worker records the trial as EARLY_STOPPED, with the folds it ran
        out: dict[str, Any] = {"metric": float(np.average(scores))}
        for k, (score, fit_time, score_time) in enumerate(zip(scores, fit_times, score_times)):
            out.update({f"split{k}_test_score": score, f"split{k}_fit_time": fit_time, f"split{k}_score_time": score_time})
        return out


def _fold_params(x: Any, params: dict[str, Any], indices: Any) -> dict[str, Any]:
    """``fit``'s keyword arguments for one fold: those with a value per sample cut to the fold's."""
    if not params:
        return {}
    try:
        from sklearn.utils.validation import _check_method_params
    except ImportError:  # scikit-learn < 1.4
        from sklearn.utils.validation import _check_fit_params as _check_method_params
    return _check_method_params(x, params, indices)
