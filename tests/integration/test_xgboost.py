"""maggy.integrations.xgboost in a lagom: the median rule stops the poor trials after a boosting
round, and XGBoost's own count of rounds shows it."""

from __future__ import annotations

import pytest

from tests.integration.frameworks import check_median_run, hold, median_run

pytest.importorskip("xgboost")
ROUNDS = 25


def train(lr, reporter):
    import xgboost
    from sklearn.datasets import make_classification

    from maggy.integrations.xgboost import MaggyCallback

    class Hold(xgboost.callback.TrainingCallback):  # after the round's report: a poor trial waits for its stop
        def after_iteration(self, model, epoch, evals_log):
            hold(reporter, lr)
            return False

    x, y = make_classification(400, 10, random_state=0)
    dtrain, dvalid = xgboost.DMatrix(x[:300], y[:300]), xgboost.DMatrix(x[300:], y[300:])
    log: dict = {}
    cb = MaggyCallback(reporter, metric="valid-logloss")
    booster = xgboost.train({"eta": lr, "max_depth": 3, "eval_metric": "logloss", "nthread": 1}, dtrain,
                            num_boost_round=ROUNDS, evals=[(dvalid, "valid")], evals_result=log, callbacks=[cb, Hold()])
    return {"metric": cb.last, "rounds": booster.num_boosted_rounds(), "framework_last": log["valid"]["logloss"][-1]}


def test_the_median_rule_stops_poor_trials_after_a_boosting_round(tmp_path):
    result = median_run(train, tmp_path, "xgb", direction="min")
    check_median_run(result, "rounds", ROUNDS)


def train_keyed(lr, reporter):
    """``train``, its objective returned under the callback's metric name."""
    out = train(lr, reporter)
    return {"valid-logloss": out.pop("metric"), **out}


def test_an_objective_named_as_a_loss_is_minimised_without_a_direction(tmp_path):
    # no direction: optimization_key's name says lower is better, so the good trials are best and finish
    result = median_run(train_keyed, tmp_path, "xgb-key", direction=None, optimization_key="valid-logloss")
    check_median_run(result, "rounds", ROUNDS)


def test_a_callback_whose_metric_improves_the_other_way_fails_its_trial_naming_the_fix(tmp_path):
    from maggy.exceptions import TrialsFailedError

    with pytest.raises(TrialsFailedError) as failed:  # the objective 'metric' says nothing: maximised
        median_run(train, tmp_path, "xgb-max", direction=None, good=[0.3], poor=[], es_policy="none")
    assert "DirectionMismatch" in str(failed.value)
    assert "lower is better (as its name says), but this experiment maximises" in str(failed.value)
    assert "pass direction='min' to lagom" in str(failed.value)
