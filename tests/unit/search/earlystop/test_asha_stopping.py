from __future__ import annotations

import pytest

from maggy import InvalidParameterError
from maggy.earlystop import ASHAStopping
from maggy.trial import Trial


def curve(tid, values):
    return Trial(tid, {}, history=list(enumerate(values)))


def test_stops_below_the_top_third_at_each_rung():
    rule = ASHAStopping(reduction_factor=3, grace_period=1)
    assert not rule.should_stop(curve("a", [0.5]), [], "max")
    assert not rule.should_stop(curve("b", [0.9]), [], "max")
    assert rule.should_stop(curve("c", [0.1]), [], "max")   # third at rung 1 -> below the top third
    assert not rule.should_stop(curve("d", [0.95]), [], "max")
    # rung 3 (steps 0..2): too few trials there yet, nobody is stopped
    assert not rule.should_stop(curve("a", [0.5, 0.5, 0.1]), [], "max")
    assert not rule.should_stop(curve("b", [0.9, 0.9, 0.9]), [], "max")
    assert rule.should_stop(curve("d", [0.95, 0.0, 0.05]), [], "max")


def test_direction_min_and_rungs_decided_once():
    rule = ASHAStopping(reduction_factor=2, grace_period=2)
    assert not rule.should_stop(curve("a", [9, 1.0]), [], "min")
    assert rule.should_stop(curve("b", [9, 2.0]), [], "min")
    assert not rule.should_stop(curve("a", [9, 1.0, 1.0]), [], "min")  # rung 2 is decided already
    with pytest.raises(InvalidParameterError, match="reduction_factor"):
        ASHAStopping(reduction_factor=1)
