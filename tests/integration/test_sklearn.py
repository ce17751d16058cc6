"""maggy.sklearn.SearchCV in a real search: the median rule drops poor candidates after their
first folds, the candidates that ran every fold score exactly as in GridSearchCV, and the refit
estimator predicts as GridSearchCV's does; on local workers and on Spark."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from maggy import Searchspace
from maggy.backends import SparkBackend
from maggy.sklearn import SearchCV

GOOD, POOR = [1.0, 10.0, 0.3], [1e-5, 2e-5]


class SlowLogisticRegression(LogisticRegression):
    """A logistic regression whose fit, for a poor candidate, takes long enough for a heartbeat to bring a stop."""

    def fit(self, X, y, sample_weight=None):  # noqa: N803
        time.sleep(0.3 if self.C in POOR else 0.0)
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.fixture(scope="module")
def data():
    return make_classification(300, 8, random_state=0)


@pytest.fixture(scope="module")
def search(data, tmp_path_factory):
    """One search shared by the tests: the good candidates first, then the poor ones (one worker)."""
    search = SearchCV(SlowLogisticRegression(), Searchspace(C=("DOUBLE", [1e-6, 100.0], "log")), cv=5,
                      scoring="neg_log_loss", num_trials=5, backend="local",
                      points_to_evaluate=[{"C": c} for c in GOOD + POOR], es_policy="median", es_min=len(GOOD),
                      es_interval=0.05, hb_interval=0.05, num_workers=1, seed=0,
                      experiment_dir=str(tmp_path_factory.mktemp("exp")))
    return search.fit(*data)


def test_poor_candidates_are_stopped_after_their_first_folds(search):
    res = search.cv_results_
    by_c = {p["C"]: i for i, p in enumerate(res["params"])}
    assert sorted(by_c) == sorted(GOOD + POOR)
    for c in POOR:
        i = by_c[c]
        ran = [k for k in range(5) if not np.isnan(res[f"split{k}_test_score"][i])]
        assert res["state"][i] == "EARLY_STOPPED" and ran == list(range(len(ran))) and 1 <= len(ran) < 5, (c, ran)
        assert np.isnan(res["mean_test_score"][i]) and res["rank_test_score"][i] == len(GOOD) + 1
    assert [res["state"][by_c[c]] for c in GOOD] == ["FINALIZED"] * len(GOOD)


def test_complete_candidates_score_exactly_as_in_grid_search(search, data):
    grid = GridSearchCV(LogisticRegression(), {"C": GOOD}, cv=5, scoring="neg_log_loss").fit(*data)
    res = search.cv_results_
    order = [next(i for i, p in enumerate(res["params"]) if p["C"] == c) for c in GOOD]
    for key in ["mean_test_score", "std_test_score", "rank_test_score"] + [f"split{k}_test_score" for k in range(5)]:
        assert list(np.asarray(res[key])[order]) == list(grid.cv_results_[key]), key
    assert list(res["param_C"][order]) == GOOD and res["param_C"].mask.sum() == 0
    assert {"mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time", "params"} <= set(res)
    assert search.best_params_ == grid.best_params_ and search.best_score_ == grid.best_score_
    assert search.best_index_ == order[grid.best_index_] and search.n_splits_ == 5
    # refit on all the data, and sklearn's interface on top of it
    x, y = data
    assert (search.predict(x) == grid.predict(x)).all()
    assert np.allclose(search.predict_proba(x), grid.predict_proba(x))
    assert search.score(x, y) == grid.score(x, y) and list(search.classes_) == [0, 1]
    assert search.result_.best_params == search.best_params_


def test_it_runs_on_spark(spark, data, tmp_path):
    search = SearchCV(LogisticRegression(), Searchspace(C=("DISCRETE", [0.1, 1.0])), cv=3, optimizer="gridsearch",
                      backend=SparkBackend(spark), es_policy="none", experiment_dir=str(tmp_path), refit=False)
    search.fit(*data)
    grid = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3).fit(*data)
    order = [search.cv_results_["params"].index(p) for p in grid.cv_results_["params"]]
    assert list(search.cv_results_["mean_test_score"][order]) == list(grid.cv_results_["mean_test_score"])
    assert search.best_params_ == grid.best_params_ and not hasattr(search, "best_estimator_")
    with pytest.raises(AttributeError, match="predict"):
        search.predict(data[0])
