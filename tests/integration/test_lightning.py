"""maggy.integrations.lightning in lagom runs: the median rule stops the poor trials at a
validation (the Trainer's global step shows it), a trial that ASHA promotes continues from its
Lightning checkpoint, and a gang of two trains with Lightning's DDP on maggy's process group."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from maggy import Searchspace, experiment
from maggy.backends import LocalBackend
from maggy.optimizers import ASHA
from tests.integration.frameworks import POOR, check_median_run, hold, median_run

if importlib.util.find_spec("lightning") is None:  # not imported here: only the workers need it
    pytest.skip("needs lightning", allow_module_level=True)
EPOCHS, BATCHES = 5, 4


def fit(lr, reporter, epochs, log=None, **extra):
    """A logistic regression in Lightning on made-up data (4 batches per epoch), validated every epoch."""

    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import make_classification

    from maggy.integrations.lightning import MaggyCallback, trainer_args

    class Model(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(8, 1)

        def training_step(self, batch, _):
            x, y = batch
            return torch.nn.functional.binary_cross_entropy_with_logits(self.layer(x).squeeze(1), y)

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_acc", ((self.layer(x).squeeze(1) > 0).float() == y).float().mean(), sync_dist=True)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=lr)

    class Watch(pl.Callback):  # what the test reads: the batches this run trained; after a validation's report, a poor
        # trial waits for its stop
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            seen["batches_run"] += 1

        def on_validation_end(self, trainer, module):
            hold(reporter, lr)

    seen = {"batches_run": 0}
    pl.seed_everything(0, verbose=False)
    x, y = make_classification(160, 8, random_state=0)
    data = torch.utils.data.TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    train = torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(128)), batch_size=32)
    valid = torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(128, 160)), batch_size=32)
    cb = MaggyCallback(reporter, metric="val_acc")
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[cb, Watch()], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **extra,
                         **trainer_args(reporter))
    model = Model()
    trainer.fit(model, train, valid, ckpt_path=cb.ckpt_path)
    out = {"metric": cb.last, "global_step": trainer.global_step, "batches_run": seen["batches_run"],
           "framework_last": float(trainer.callback_metrics["val_acc"]), "epochs": trainer.current_epoch}
    if log is not None:
        with open(log, "a") as f:
            f.write(json.dumps({**out, "rank": trainer.global_rank, "world": trainer.world_size,
                                "weights": [round(float(v), 6) for v in model.layer.weight.flatten()]}) + "\n")
    return out


def train(lr, reporter):
    return fit(lr, reporter, EPOCHS)


def test_the_median_rule_stops_poor_trials_at_a_validation(tmp_path):
    result = median_run(train, tmp_path, "pl", direction="max")
    df = check_median_run(result, "global_step", EPOCHS * BATCHES, past=0)
    assert (df.loc[POOR, "global_step"] % BATCHES == 0).all()


def train_for_budget(lr, reporter, budget):
    return fit(lr, reporter, int(budget))


def test_a_promoted_trial_continues_from_its_lightning_checkpoint(tmp_path):
    result = experiment.lagom(train_for_budget, Searchspace(lr=("DOUBLE", [1e-8, 1.0])), backend=LocalBackend(),
                              verbose=False, optimizer=ASHA(reduction_factor=2, resource_min=1, resource_max=2),
                              num_trials=2, points_to_evaluate=[{"lr": 0.3}, {"lr": 0.2}], num_workers=1,
                              hb_interval=0.05, seed=0, experiment_dir=str(tmp_path), fail_fast=1, direction="max")
    df = result.trials
    promoted = df[df["budget"] == 2]
    assert len(promoted) == 1, df
    row = promoted.iloc[0]
    # the second run trained the second epoch alone, from the checkpoint of the first, and its steps follow on
    assert row["batches_run"] == BATCHES and row["global_step"] == 2 * BATCHES and row["epochs"] == 2
    history = result.history
    assert list(history[history["trial_id"] == row["trial_id"]]["step"]) == [BATCHES, 2 * BATCHES]


def train_in_gang(log):
    def run(lr, reporter):
        return fit(lr, reporter, 2, log=log)
    return run


def test_a_gang_of_two_trains_with_lightnings_ddp_on_maggys_process_group(tmp_path):
    log = str(tmp_path / "ranks.jsonl")
    result = experiment.lagom(train_in_gang(log), Searchspace(lr=("DOUBLE", [0.1, 0.3])), backend=LocalBackend(),
                              verbose=False, num_trials=1, workers_per_trial=2, es_policy="none", hb_interval=0.05,
                              dist_timeout=60, seed=0, experiment_dir=str(tmp_path / "exp"), fail_fast=1)
    ranks = sorted((json.loads(line) for line in open(log)), key=lambda r: r["rank"])
    assert [(r["rank"], r["world"]) for r in ranks] == [(0, 2), (1, 2)]
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP kept the replicas equal
    # each rank saw half of the 4 batches an epoch: 2 steps an epoch; rank 0 alone reported
    assert ranks[0]["global_step"] == 4 and list(result.history["step"]) == [2, 4]
    assert result.trials["state"].tolist() == ["FINALIZED"] and result.best_metric == ranks[0]["framework_last"]
    assert os.path.exists(os.path.join(result.best_trial.checkpoint_dir, "maggy-lightning.ckpt"))
