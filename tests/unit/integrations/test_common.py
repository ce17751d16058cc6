"""The part every framework callback shares: the metric by name, the stop, the direction."""

from __future__ import annotations

import pytest

from maggy.exceptions import InvalidParameterError, MetricNotLogged
from maggy.integrations._common import Metric
from maggy.runtime.reporter import Reporter
from maggy.search.direction import Direction


@pytest.mark.parametrize("name, direction", [
    ("valid-logloss", "min"), ("binary_logloss", "min"), ("val_loss", "min"), ("eval_loss", "min"),
    ("multi_error", "min"), ("valid-rmse", "min"), ("val_acc", "max"), ("val_accuracy", "max"),
    ("eval_accuracy", "max"), ("valid-auc", "max"), ("neg_log_loss", "max"), ("f1", "max"), ("ndcg@10", "max"),
])
def test_the_direction_follows_what_the_name_says(name, direction):
    assert Direction.of_metric(name) == Direction(direction)
    assert Metric(Reporter("t", {}), name, "X").direction == Direction(direction)


def test_a_name_that_says_nothing_has_no_direction_unless_stated():
    assert Direction.of_metric("reward") is None and Direction.of_metric("episode") is None
    assert Direction.of_metric("dice_loss") is Direction.MIN  # the last word that says one decides
    assert Metric(Reporter("t", {}), "reward", "X", direction="max").direction is Direction.MAX


def test_a_metric_never_logged_lists_the_names_that_were():
    with pytest.raises(MetricNotLogged, match=r"Keras logged no metric 'val_acc'; it logged \['loss', 'val_loss'\]"):
        Metric(Reporter("t", {}), "val_acc", "Keras").report({"val_loss": 0.3, "loss": 0.2}, step=0)


def test_the_stop_is_the_frameworks_to_make_and_every_rank_reports():
    reporter = Reporter("t", {}, rank=1, world_size=2)
    metric = Metric(reporter, "val_acc", "Keras")
    assert not metric.chief and metric.report({"val_acc": 0.5}, step=3) is False
    assert reporter.last == (3, 0.5) and reporter.take() == ([], [])  # rank 1's points stay with it
    reporter.request_stop()
    assert metric.report({"val_acc": 0.6}, step=4) is True and metric.stopped and metric.last == 0.6


def test_the_reporter_comes_first():
    with pytest.raises(InvalidParameterError, match="first argument is the reporter"):
        Metric("val_acc", "val_acc", "Keras")
