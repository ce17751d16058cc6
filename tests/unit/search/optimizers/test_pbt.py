"""Population-based training: its decisions, its lineage, and a schedule it finds."""

from __future__ import annotations

import statistics

import pytest

from bench.problems import LR_SCHEDULE_SPACE, lr_schedule_model
from maggy import InvalidParameterError, Searchspace
from maggy.earlystop import NoStopping
from maggy.engine.scheduler import Scheduler, run_sequential
from maggy.optimizers import PBT, RandomSearch
from maggy.trial import Trial, TrialState

SP = LR_SCHEDULE_SPACE
STEPS = 40
train = lr_schedule_model


def best_fixed_lr_accuracy() -> float:
    return max(train({"lr": lr}, STEPS, "x", {}) for lr in [i / 10000 for i in range(10, 5000)])


def test_pbt_beats_the_best_fixed_learning_rate_with_random_searchs_budget():
    pbt_best, random_best = [], []
    for seed in range(5):
        pbt = PBT(perturbation_interval=4, resource_max=STEPS, quantile_fraction=0.25)
        pbt.setup(SP, direction="max", seed=seed, num_trials=8)
        trials = run_sequential(train, pbt, NoStopping(), total=8, direction="max", checkpoints=True)
        done = [t for t in trials if t.budget == STEPS]
        assert len(done) == 8  # every member of the population trained to the end, no more
        pbt_best.append(max(t.metric for t in done))
        rs = RandomSearch()
        rs.setup(SP, direction="max", seed=seed)
        fixed = run_sequential(lambda p, b, tid: train(p, STEPS, tid, {}), rs, NoStopping(), total=8, direction="max")
        random_best.append(max(t.metric for t in fixed))  # 8 trials x 40 steps: PBT's budget
    ceiling = best_fixed_lr_accuracy()  # no fixed learning rate does better than this
    assert max(random_best) <= ceiling + 1e-9
    assert min(pbt_best) > ceiling, (pbt_best, ceiling)
    assert statistics.median(pbt_best) > statistics.median(random_best) + 0.05


def test_a_member_in_the_bottom_copies_a_top_members_checkpoint_and_perturbs_its_parameters():
    pbt = PBT(perturbation_interval=1, resource_max=3, quantile_fraction=0.25, resample_probability=0.0)
    pbt.setup(SP, direction="max", seed=0, num_trials=4)
    sched = Scheduler(pbt, NoStopping(), total=4, direction="max")
    first = [sched.next_trial(worker=i) for i in range(4)]
    assert [t.budget for t in first] == [1, 1, 1, 1] and sched.next_trial(worker=4) == "wait"
    scores = {t.trial_id: i for i, t in enumerate(first)}  # first[3] is the best, first[0] the worst
    for t in reversed(first):  # the best ends first: with no one to compare with, it continues
        sched.learn(sched.record_end(t.trial_id, TrialState.FINALIZED, metric=scores[t.trial_id]))
    assert [t.state for t in first] == [TrialState.PAUSED] * 3 + [TrialState.PENDING]
    decided = [sched.next_trial(worker=i) for i in range(4)]  # the others are ranked among all four
    continued = [t for t in decided if t.parent is None]
    children = [t for t in decided if t.parent is not None]
    assert {t.trial_id for t in continued} == {t.trial_id for t in first[1:]}  # the rest continue
    assert len(children) == 1 and children[0].parent == first[3].trial_id and children[0].parent_budget == 1
    child = children[0]
    assert child.budget == 2 and child.params["lr"] in (first[3].params["lr"] * 0.8, first[3].params["lr"] * 1.2)
    assert first[0].state is TrialState.PAUSED  # replaced: it stays at budget 1, finalized at the end
    # each run has its own checkpoint; the child starts from a copy of its parent's at budget 1
    assert sched.checkpoint_names(child) == (f"{child.trial_id}@2", f"{first[3].trial_id}@1")
    assert sched.checkpoint_names(first[1]) == (f"{first[1].trial_id}@2", f"{first[1].trial_id}@1")
    record = child.to_record()
    assert record["parent"] == first[3].trial_id and record["parent_budget"] == 1


def test_a_child_carries_its_parents_history_and_continues_its_step_numbers():
    pbt = PBT(perturbation_interval=2, resource_max=6, quantile_fraction=0.5)
    pbt.setup(SP, direction="max", seed=1, num_trials=2)

    def curve(params, budget, tid, ckpt):
        ckpt["n"] = ckpt.get("n", 0)
        for _ in range(2):
            ckpt["n"] += 1
            yield params["lr"] * ckpt["n"]

    trials = run_sequential(curve, pbt, NoStopping(), total=2, direction="max", checkpoints=True)
    children = [t for t in trials if t.parent is not None]
    assert children, "no member was ever replaced"
    for child in children:
        parent = next(t for t in trials if t.trial_id == child.parent)
        inherited = child.history[:len(child.history) - 2 * (len(child.rungs))]
        assert inherited == parent.history[:len(inherited)]
        assert [s for s, _ in child.history] == list(range(len(child.history)))


def test_pbt_validates_its_arguments_and_the_population():
    with pytest.raises(InvalidParameterError, match="quantile_fraction"):
        PBT(quantile_fraction=0.6)
    with pytest.raises(InvalidParameterError, match="resource_max"):
        PBT(perturbation_interval=5, resource_max=4)
    with pytest.raises(InvalidParameterError, match="mutations"):
        PBT(mutations={"lr": []})
    with pytest.raises(InvalidParameterError, match="does not have"):
        PBT(mutations={"momentum": [0.9]}).setup(SP, direction="max", num_trials=4)
    with pytest.raises(InvalidParameterError, match="population"):
        PBT().setup(SP, direction="max", num_trials=1)


def paused_pair(pbt, sp, seed):
    """Through ask/tell alone: a population of two, each paused after its first interval, the
    first worse (0.1) than the second (0.9); returns the two trials."""
    pbt.setup(sp, direction="max", seed=seed, num_trials=2)
    members = []
    for metric in (0.1, 0.9):
        first = pbt.ask([])
        trial = Trial.create(first.params, first.budget)
        pbt.accepted(trial.trial_id, first)
        trial.update(metric=metric)
        trial.transition(TrialState.RUNNING)
        trial.transition(TrialState.PAUSED)
        members.append(trial)
    for trial in members:
        pbt.tell(trial.view())
    return members


def explored(pbt, sp, seed):
    """(the donor's params, its copy's params): the worse of a pair copies the better and
    perturbs what it copied."""
    worse, better = paused_pair(pbt, sp, seed)
    copy = pbt.ask([])
    assert copy.parent == better.trial_id and copy.info["member"] == worse.trial_id
    return better.params, copy.params


def test_mutations_pick_neighbours_from_lists_and_draw_from_functions():
    opts = ["sgd", "adam", "rmsprop"]
    sp = Searchspace(lr=("DOUBLE", [1e-3, 0.5]), opt=("CATEGORICAL", opts))
    neighbours = {"sgd": {"sgd", "adam"}, "adam": {"sgd", "rmsprop"}, "rmsprop": {"adam", "rmsprop"}}
    drawn, moved = set(), set()
    for seed in range(20):  # perturbed: a listed value moves to a neighbour, a number by a factor
        pbt = PBT(perturbation_interval=1, resource_max=2, quantile_fraction=0.5,
                  mutations={"opt": opts, "lr": lambda rng: 0.125}, resample_probability=0.0)
        donor, child = explored(pbt, sp, seed)
        assert child["opt"] in neighbours[donor["opt"]]
        moved.add(child["opt"] != donor["opt"])
        by = {f: min(max(donor["lr"] * f, 1e-3), 0.5) for f in (0.8, 1.2)}  # kept within the range
        assert child["lr"] in by.values(), (donor, child)
        drawn |= {f for f, lr in by.items() if lr == child["lr"]}
    assert drawn == {0.8, 1.2} and True in moved  # either factor; not always at an end of the list
    for seed in range(20):  # resampled: from the function, or the list
        pbt = PBT(perturbation_interval=1, resource_max=2, quantile_fraction=0.5,
                  mutations={"opt": opts, "lr": lambda rng: 0.125}, resample_probability=1.0)
        donor, child = explored(pbt, sp, seed)
        assert child["lr"] == 0.125 and child["opt"] in opts
    for seed in range(5):
        only = PBT(perturbation_interval=1, resource_max=2, quantile_fraction=0.5, mutations={"opt": opts})
        donor, child = explored(only, sp, seed)
        assert child["lr"] == donor["lr"]  # not listed: unchanged


def test_a_duplicate_child_gives_the_decision_back():
    """Through ask/tell alone: the worse member's copy of the better one is rejected (a point
    already tried), and the next ask decides for that same member again."""
    pbt = PBT(perturbation_interval=1, resource_max=2, quantile_fraction=0.5)
    members = paused_pair(pbt, SP, seed=0)
    copy = pbt.ask([])
    assert copy.parent == members[1].trial_id and copy.info["member"] == members[0].trial_id
    pbt.rejected(copy)
    again = pbt.ask([])
    assert again.parent == members[1].trial_id and again.info["member"] == members[0].trial_id
