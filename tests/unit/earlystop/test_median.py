from __future__ import annotations

import pytest

from maggy import InvalidParameterError
from maggy.earlystop import MedianStoppingRule, NoStopping
from maggy.trial import Trial


def trial(values, tid="t"):
    return Trial(tid, {}, history=list(enumerate(values)))


FINISHED = [trial([0.5, 0.6, 0.7, 0.8]), trial([0.4, 0.6, 0.8, 0.9]), trial([0.6, 0.6, 0.6, 0.6])]


def test_needs_min_trials_with_data_up_to_the_step():
    rule = MedianStoppingRule(min_trials=4)
    assert not rule.should_stop(trial([0.0, 0.0]), FINISHED, "max")
    assert MedianStoppingRule(min_trials=3).should_stop(trial([0.0, 0.0]), FINISHED, "max")
    # finished trials without metrics up to that step do not count
    assert not MedianStoppingRule(min_trials=3).should_stop(trial([0.0]), FINISHED[:2] + [Trial("e", {})], "max")


def test_compares_best_so_far_with_median_of_running_averages():
    rule = MedianStoppingRule(min_trials=3)
    # at step 1 the running averages are 0.55, 0.5, 0.6 -> median 0.55
    assert rule.should_stop(trial([0.1, 0.54]), FINISHED, "max")
    assert not rule.should_stop(trial([0.56, 0.1]), FINISHED, "max")  # best-so-far counts
    assert not rule.should_stop(trial([]), FINISHED, "max")


def test_direction_min_mirrors():
    rule = MedianStoppingRule(min_trials=3)
    assert rule.should_stop(trial([0.9, 0.56]), FINISHED, "min")
    assert not rule.should_stop(trial([0.54, 0.9]), FINISHED, "min")


def test_validation_and_no_stopping():
    with pytest.raises(InvalidParameterError, match="min_trials"):
        MedianStoppingRule(min_trials=0)
    assert not NoStopping().should_stop(trial([0.0]), FINISHED, "max")
