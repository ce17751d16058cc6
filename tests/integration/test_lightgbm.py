"""maggy.integrations.lightgbm in a lagom: the median rule stops the poor trials after a boosting
round, and LightGBM's own count of rounds shows it."""

from __future__ import annotations

import pytest

from tests.integration.frameworks import check_median_run, hold, median_run

pytest.importorskip("lightgbm")
ROUNDS = 25


def train(lr, reporter):
    import lightgbm
    from sklearn.datasets import make_classification

    from maggy.integrations.lightgbm import MaggyCallback

    def wait(env):  # after the round's report (MaggyCallback's order is 25): a poor trial waits for its stop
        hold(reporter, lr)

    wait.order = 26

    x, y = make_classification(400, 10, random_state=0)
    train_set = lightgbm.Dataset(x[:300], y[:300])
    valid_set = lightgbm.Dataset(x[300:], y[300:], reference=train_set)
    log: dict = {}
    cb = MaggyCallback(reporter, metric="binary_logloss")
    booster = lightgbm.train({"objective": "binary", "learning_rate": lr, "num_leaves": 7, "verbose": -1, "num_threads": 1},
                             train_set, num_boost_round=ROUNDS, valid_sets=[valid_set],
                             callbacks=[lightgbm.record_evaluation(log), cb, wait])
    return {"metric": cb.last, "rounds": booster.current_iteration(), "framework_last": log["valid_0"]["binary_logloss"][-1]}


def test_the_median_rule_stops_poor_trials_after_a_boosting_round(tmp_path):
    result = median_run(train, tmp_path, "lgb", direction="min")
    check_median_run(result, "rounds", ROUNDS)
