from __future__ import annotations

import pytest

from maggy import InvalidParameterError
from maggy.earlystop import MedianStoppingRule, NoStopping
from maggy.trial import Trial, TrialState


def trial(values, tid="t", state=TrialState.RUNNING):
    return Trial(tid, {}, history=list(enumerate(values)), state=state).view()


FINISHED = [trial(v, state=TrialState.FINALIZED) for v in ([0.5, 0.6, 0.7, 0.8], [0.4, 0.6, 0.8, 0.9],
                                                              [0.6, 0.6, 0.6, 0.6])]
AVERAGE = MedianStoppingRule(min_trials=3, running_average=True)


def test_step_wise_compares_best_so_far_with_the_median_at_the_same_step():
    rule = MedianStoppingRule(min_trials=3)
    # at step 2 the others have 0.7, 0.8, 0.6 -> median 0.7
    assert rule.should_stop(trial([0.1, 0.2, 0.69]), FINISHED, "max")
    assert not rule.should_stop(trial([0.1, 0.2, 0.71]), FINISHED, "max")
    assert not rule.should_stop(trial([0.72, 0.1, 0.1]), FINISHED, "max")  # best-so-far counts
    assert not rule.should_stop(trial([]), FINISHED, "max")


def test_step_wise_stops_what_running_averages_let_through_on_rising_curves():
    rising = [trial([0.1 * (k + 1) * s for s in range(1, 11)], tid=str(k), state=TrialState.FINALIZED)
              for k in range(5, 10)]  # curves that rise by 0.6 .. 1.0 a step
    slow = trial([0.5 * s for s in range(1, 6)])  # at step 4: 2.5; the others 3.0 .. 5.0, their averages 1.8 .. 3.0
    assert MedianStoppingRule(min_trials=5).should_stop(slow, rising, "max")
    assert not MedianStoppingRule(min_trials=5, running_average=True).should_stop(slow, rising, "max")


def test_step_wise_counts_only_trials_that_finished_and_reported_that_step():
    rule = MedianStoppingRule(min_trials=3)
    stopped = trial([0.9, 0.9, 0.9], state=TrialState.EARLY_STOPPED)
    assert not rule.should_stop(trial([0.0, 0.0]), FINISHED[:2] + [stopped], "max")
    short = trial([0.9], state=TrialState.FINALIZED)  # never reached step 1
    assert not rule.should_stop(trial([0.0, 0.0]), FINISHED[:2] + [short], "max")
    assert rule.should_stop(trial([0.0, 0.0]), FINISHED, "max")


def test_warmup_steps():
    rule = MedianStoppingRule(min_trials=3, warmup_steps=2)
    assert not rule.should_stop(trial([0.0, 0.0]), FINISHED, "max")  # step 1 < 2
    assert rule.should_stop(trial([0.0, 0.0, 0.0]), FINISHED, "max")


def test_needs_min_trials_with_data_up_to_the_step():
    assert not MedianStoppingRule(min_trials=4).should_stop(trial([0.0, 0.0]), FINISHED, "max")
    assert AVERAGE.should_stop(trial([0.0, 0.0]), FINISHED, "max")
    # finished trials without metrics up to that step do not count
    assert not AVERAGE.should_stop(trial([0.0]), FINISHED[:2] + [trial([], "e", TrialState.FINALIZED)], "max")


def test_running_average_compares_best_so_far_with_median_of_running_averages():
    # at step 1 the running averages are 0.55, 0.5, 0.6 -> median 0.55
    assert AVERAGE.should_stop(trial([0.1, 0.54]), FINISHED, "max")
    assert not AVERAGE.should_stop(trial([0.56, 0.1]), FINISHED, "max")  # best-so-far counts
    assert not AVERAGE.should_stop(trial([]), FINISHED, "max")


def test_direction_min_mirrors():
    assert AVERAGE.should_stop(trial([0.9, 0.56]), FINISHED, "min")
    assert not AVERAGE.should_stop(trial([0.54, 0.9]), FINISHED, "min")
    rule = MedianStoppingRule(min_trials=3)  # at step 1 the others have 0.6, 0.6, 0.6
    assert rule.should_stop(trial([0.9, 0.61]), FINISHED, "min")
    assert not rule.should_stop(trial([0.9, 0.59]), FINISHED, "min")


def test_validation_and_no_stopping():
    with pytest.raises(InvalidParameterError, match="min_trials"):
        MedianStoppingRule(min_trials=0)
    with pytest.raises(InvalidParameterError, match="warmup_steps"):
        MedianStoppingRule(warmup_steps=-1)
    assert not NoStopping().should_stop(trial([0.0]), FINISHED, "max")
