from __future__ import annotations

import pytest

from maggy import EarlyStopped
from maggy.runtime.reporter import Reporter


def test_reporter_steps_stop_and_validation():
    r = Reporter("t", {"x": 1})
    r.broadcast(0.5)
    r.broadcast(0.6)
    r.broadcast(0.9, step=10)
    r.log("hello")
    assert r.take() == ([[0, 0.5], [1, 0.6], [10, 0.9]], ["hello"])
    assert r.take() == ([], [])
    with pytest.raises(TypeError, match="finite number"):
        r.broadcast("0.5")
    with pytest.raises(TypeError, match="needs an int"):
        r.broadcast(0.5, step=1.5)
    r.request_stop()
    with pytest.raises(EarlyStopped):
        r.broadcast(0.7)
    assert r.last == (11, 0.7)
