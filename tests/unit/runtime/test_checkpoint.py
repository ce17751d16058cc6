"""A trial's checkpoint directory on local storage: train_fn writes there, a mark is safe at once."""

from __future__ import annotations

import os

from maggy.runtime.checkpoint import TrialCheckpoint
from maggy.runtime.reporter import Reporter


def test_a_mark_on_local_storage_is_complete_at_once(tmp_path):
    location = tmp_path / "trials" / "t1"
    ckpt = TrialCheckpoint(str(location))
    assert not location.exists()  # made when first asked for
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


def test_a_trial_that_keeps_no_checkpoint_gets_no_directory(tmp_path):
    from maggy import HyperparameterOptConfig, Searchspace, experiment
    from tests.helpers import ThreadBackend

    def train(k, reporter):
        if k % 2:
            with open(f"{reporter.checkpoint_dir}/state", "w") as f:
                f.write(str(k))
        return k

    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", [0, 1, 2, 3])), optimizer="gridsearch",
                                  num_workers=2, es_policy="none", experiment_dir=str(tmp_path))
    result = experiment.lagom(train, cfg, backend=ThreadBackend(), verbose=False)
    trials = result.trials.set_index("k")
    root = os.path.join(result.experiment_dir, "trials")
    dirs = sorted(name for name in os.listdir(root) if os.path.isdir(os.path.join(root, name)))
    assert dirs == sorted(trials.loc[[1, 3], "trial_id"])
