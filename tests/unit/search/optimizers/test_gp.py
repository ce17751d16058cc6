"""GP's pending points and its candidates: it never proposes a point tried or running, so an
experiment never ends early for it on a continuous space (a model whose maximum it has visited
stands in for the fitted GP)."""

from __future__ import annotations

import numpy as np

from maggy import Searchspace
from maggy.earlystop import NoStopping
from maggy.engine.scheduler import Scheduler
from maggy.optimizers import GP
from maggy.trial import Trial, TrialState


class Peak:
    """A fitted model stand-in: its mean peaks at ``top`` (unit coordinates), sigma 1 everywhere."""

    kernel_ = None

    def __init__(self, top):
        self.top = np.asarray(top, dtype=float)

    def predict(self, x, return_std=False):
        mu = -((np.asarray(x) - self.top) ** 2).sum(axis=1)
        return (mu, np.ones(len(mu))) if return_std else mu


def peaked(sp, top, **kwargs):
    opt = GP(n_startup=2, n_candidates=50, **kwargs)
    opt.setup(sp, direction="max", seed=0)
    opt._fit = lambda x, y, optimize, kernel=None: Peak(top)
    return opt


def tell(opt, params, metric):
    trial = Trial.create(params)
    trial.transition(TrialState.RUNNING)
    trial.update(metric=metric)
    trial.transition(TrialState.FINALIZED)
    opt.tell(trial.view())


def test_a_pending_or_tried_point_is_never_proposed_again():
    sp = Searchspace(a=("INTEGER", [0, 10]), b=("INTEGER", [0, 10]))
    opt = peaked(sp, [0.5, 0.5])  # the model's maximum: (5, 5)
    tell(opt, {"a": 0, "b": 0}, 0.0)
    tell(opt, {"a": 10, "b": 10}, 0.0)
    assert opt.ask([]).params == {"a": 5, "b": 5}
    running = Trial.create({"a": 5, "b": 5}).view()
    second = opt.ask([running]).params
    assert second != {"a": 5, "b": 5} and abs(second["a"] - 5) + abs(second["b"] - 5) == 1  # the next best
    tell(opt, second, 1.0)
    assert opt.ask([running]).params not in ({"a": 5, "b": 5}, second)


def test_gp_never_ends_an_experiment_early_on_a_continuous_space():
    """Two workers, a model whose maximum sits on the boundary (where L-BFGS-B and the clipped
    candidates land exactly): every trial of the twenty starts, none by the scheduler's fallback."""
    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]), y=("DOUBLE", [0.0, 1.0]))
    opt = peaked(sp, [1.0, 1.0], n_refine=2)
    sched = Scheduler(opt, NoStopping(), total=20, direction="max")
    running = [sched.next_trial(worker=w) for w in (0, 1)]
    while running:
        trial = running.pop(0)
        ended = sched.record_end(trial.trial_id, TrialState.FINALIZED, metric=trial.params["x"] + trial.params["y"])
        reply = sched.next_trial(worker=0)
        sched.learn(ended)
        if isinstance(reply, Trial):
            running.append(reply)
    assert sched.started == 20 and sched.fallbacks == 0 and sched.short is None
    assert sum(t.params == {"x": 1.0, "y": 1.0} for t in sched.trials.values()) == 1
