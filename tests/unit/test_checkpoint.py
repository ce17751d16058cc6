"""A trial's checkpoint directory on local storage: train_fn writes there, a mark is safe at once."""

from __future__ import annotations

from maggy.checkpoint import TrialCheckpoint
from maggy.reporter import Reporter


def test_a_mark_on_local_storage_is_complete_at_once(tmp_path):
    location = tmp_path / "trials" / "t1"
    ckpt = TrialCheckpoint(str(location))
    assert ckpt.local == str(location) and location.is_dir() and ckpt.complete is None
    rep = Reporter("t1", {}, next_step=4)
    rep.on_checkpoint = ckpt.mark
    rep.checkpoint()  # nothing broadcast yet: the state before step 4
    assert ckpt.complete == 3
    rep.broadcast(0.5)
    rep.broadcast(0.7)
    rep.checkpoint()
    assert ckpt.complete == 5
    ckpt.finish()
    assert location.is_dir()
