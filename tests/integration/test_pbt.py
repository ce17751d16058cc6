"""PBT on a real backend: members that fall behind continue from a copy of a better member's
checkpoint, with perturbed parameters, and the lineage is in the results and the journal."""

from __future__ import annotations

import json
import os

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.optimizers import PBT


def train(lr, budget, reporter):
    import json
    import os
    path = os.path.join(reporter.checkpoint_dir, "state.json")
    state = {"epoch": 0, "p": 0.0, "runs": []}
    if os.path.exists(path):
        with open(path) as f:
            state = json.load(f)
    for epoch in range(state["epoch"], budget):
        state["p"] += lr * (1 - state["p"])
        reporter.broadcast(state["p"] - 2 * lr, step=epoch)
    state["epoch"] = budget
    state["runs"].append([reporter.trial_id, budget])
    with open(path, "w") as f:
        json.dump(state, f)
    return state["p"] - 2 * lr


def test_pbt_members_exploit_checkpoints_and_keep_their_lineage(backend, tmp_path):
    sp = Searchspace(lr=("DOUBLE", [1e-3, 0.5], "log"))
    cfg = HyperparameterOptConfig(searchspace=sp, optimizer=PBT(perturbation_interval=1, resource_max=4,
                                                                quantile_fraction=0.5),
                                  num_trials=6, seed=0, num_workers=2, hb_interval=0.05, experiment_dir=str(tmp_path))
    result = experiment.lagom(train, cfg, backend=backend, verbose=False)
    df = result.trials
    assert set(df["state"]) == {"FINALIZED"} and (df["budget"] == 4).sum() == 6  # the population, to the end
    children = df[df["parent"].notna()]
    # How many members are replaced depends on the order in which the two workers' results arrive
    # (replaying the driver's calls in sampled orders gives 4 to 11 for this seed); no tighter bound
    # holds for every order. The lineage of each, whatever their number, is checked below.
    assert len(children) >= 1
    trials_dir = os.path.join(result.experiment_dir, "trials")

    def state(trial_id, budget):
        with open(os.path.join(trials_dir, f"{trial_id}@{budget:g}", "state.json")) as f:
            return json.load(f)

    for child in children.itertuples():
        parent = df.set_index("trial_id").loc[child.parent]
        assert child.lr != parent.lr and child.budget > child.parent_budget
        first = min(r for r in child.rungs)  # the child's first run started from the parent's checkpoint
        inherited = state(child.parent, child.parent_budget)
        assert state(child.trial_id, first)["runs"] == inherited["runs"] + [[child.trial_id, first]]
        assert child.steps == child.budget  # the parent's epochs and its own, each computed once
    journal = [json.loads(line) for line in open(os.path.join(result.experiment_dir, "journal.jsonl"))]
    lineage = {e["trial_id"]: (e["parent"], e["parent_budget"]) for e in journal if e.get("parent")}
    assert lineage == {c.trial_id: (c.parent, c.parent_budget) for c in children.itertuples()}
    assert result.best_params["lr"] == df.loc[df[df["budget"] == 4]["metric"].idxmax(), "lr"]
