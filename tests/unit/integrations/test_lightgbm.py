"""maggy.integrations.lightgbm with LightGBM itself, a reporter and no driver."""

from __future__ import annotations

import pytest

from maggy.exceptions import MetricNotLogged
from maggy.runtime.reporter import Reporter
from tests.unit.integrations.reporters import StopAt

lightgbm = pytest.importorskip("lightgbm")
PARAMS = {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1}


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import make_classification

    x, y = make_classification(200, 5, random_state=0)
    train = lightgbm.Dataset(x[:150], y[:150])
    return train, lightgbm.Dataset(x[150:], y[150:], reference=train)


def test_each_round_is_reported_and_a_stop_ends_boosting_after_that_round(data):
    from maggy.integrations.lightgbm import MaggyCallback

    stop = StopAt(4)
    cb = MaggyCallback(stop.reporter)
    log: dict = {}
    booster = lightgbm.train(PARAMS, data[0], num_boost_round=20, valid_sets=[data[1]],
                             callbacks=[lightgbm.record_evaluation(log), cb])
    points, _ = stop.reporter.take()
    assert booster.current_iteration() == 5 and cb.stopped
    assert points == [[i, v] for i, v in enumerate(log["valid_0"]["binary_logloss"])]
    assert cb.last == log["valid_0"]["binary_logloss"][-1]


def test_a_metric_or_set_lightgbm_never_logged_names_those_it_did(data):
    from maggy.integrations.lightgbm import MaggyCallback

    with pytest.raises(MetricNotLogged, match=r"logged no metric 'auc'; it logged \['binary_logloss'\]"):
        lightgbm.train(PARAMS, data[0], num_boost_round=2, valid_sets=[data[1]],
                       callbacks=[MaggyCallback(Reporter("t", {}), metric="auc")])
    with pytest.raises(MetricNotLogged, match=r"no validation set 'valid_0'; it logged \['valid: binary_logloss'\]"):
        lightgbm.train(PARAMS, data[0], num_boost_round=2, valid_sets=[data[1]], valid_names=["valid"],
                       callbacks=[MaggyCallback(Reporter("t", {}))])
