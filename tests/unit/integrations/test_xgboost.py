"""maggy.integrations.xgboost with XGBoost itself, a reporter and no driver."""

from __future__ import annotations

import cloudpickle
import pytest

from maggy.exceptions import MetricNotLogged
from maggy.runtime.reporter import Reporter
from tests.unit.integrations.reporters import StopAt

xgboost = pytest.importorskip("xgboost")


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import make_classification

    x, y = make_classification(200, 5, random_state=0)
    return xgboost.DMatrix(x[:150], y[:150]), xgboost.DMatrix(x[150:], y[150:])


def test_each_round_is_reported_and_a_stop_ends_boosting_after_that_round(data):
    from maggy.integrations.xgboost import MaggyCallback

    stop = StopAt(4)
    cb = MaggyCallback(stop.reporter, metric="valid-logloss")
    log: dict = {}
    booster = xgboost.train({"eta": 0.3, "nthread": 1, "eval_metric": "logloss", "objective": "binary:logistic"}, data[0],
                            num_boost_round=20, evals=[(data[0], "train"), (data[1], "valid")], evals_result=log,
                            callbacks=[cb])
    points, _ = stop.reporter.take()
    assert booster.num_boosted_rounds() == 5 and cb.stopped
    assert points == [[i, v] for i, v in enumerate(log["valid"]["logloss"])] and cb.last == log["valid"]["logloss"][-1]
    assert str(cb.metric.direction) == "min"


def test_a_metric_xgboost_never_logged_names_those_it_did(data):
    from maggy.integrations.xgboost import MaggyCallback

    with pytest.raises(MetricNotLogged, match=r"XGBoost logged no metric 'valid-auc'; it logged \['train-logloss', "
                                              r"'valid-logloss'\]"):
        xgboost.train({"eval_metric": "logloss", "nthread": 1, "objective": "binary:logistic"}, data[0], num_boost_round=3,
                      evals=[(data[0], "train"), (data[1], "valid")], callbacks=[MaggyCallback(Reporter("t", {}), "valid-auc")])


def test_the_callback_class_is_made_on_first_use_and_pickled_by_reference():
    from maggy.integrations import xgboost as module

    cb = module.MaggyCallback(Reporter("t", {}))
    assert isinstance(cb, xgboost.callback.TrainingCallback) and type(cb).__module__ == "maggy.integrations.xgboost"
    assert cloudpickle.loads(cloudpickle.dumps(type(cb))) is type(cb)
    with pytest.raises(AttributeError):
        module.Nothing  # noqa: B018
