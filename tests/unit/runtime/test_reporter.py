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
    with pytest.raises(TypeError, match="needs a number; got str '0.5'"):
        r.broadcast("0.5")
    with pytest.raises(TypeError, match="needs an int"):
        r.broadcast(0.5, step=1.5)
    r.request_stop()
    with pytest.raises(EarlyStopped):
        r.broadcast(0.7)
    assert r.last == (11, 0.7)


def test_in_a_gang_the_vote_alone_decides_a_stop_heard_during_it_waits_for_the_next():
    votes = []
    rep = Reporter("t", {}, rank=1, world_size=2)

    def agree(flag):  # the other rank's vote is False; the heartbeat hears STOP while the vote runs
        votes.append(flag)
        rep.request_stop()
        return flag

    rep.agree = agree
    rep.broadcast(0.5, step=0)  # voted False: every rank goes on, this one too
    with pytest.raises(EarlyStopped):
        rep.broadcast(0.6, step=1)  # the next vote carries the STOP: every rank stops here
    assert votes == [False, True]
    assert rep.take()[0] == []  # rank 1's points never reach the driver


def test_broadcast_takes_numpy_and_tensors_and_a_nan_is_diverged():
    import numpy as np

    from maggy.exceptions import Diverged
    r = Reporter("t", {})
    r.broadcast(np.float32(0.5))
    r.broadcast(np.array(0.25), step=3)
    torch = pytest.importorskip("torch")
    r.broadcast(torch.tensor([0.75]))
    assert r.take()[0] == [[0, 0.5], [3, 0.25], [4, 0.75]]
    with pytest.raises(Diverged, match="metric at step 5 is nan: the trial diverged"):
        r.broadcast(float("nan"), step=5)
