"""maggy.integrations.lightning with a Trainer of the older package name, pytorch_lightning, a
reporter and no driver: the callback of lightning.pytorch serves it, stops it, checkpoints and
names the metrics that were logged when its own is not."""

from __future__ import annotations

import os

import pytest

from maggy.exceptions import MetricNotLogged
from maggy.runtime.reporter import Reporter
from tests.unit.integrations.reporters import StopAt

pl = pytest.importorskip("pytorch_lightning")
torch = pytest.importorskip("torch")


class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, _):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, _):
        self.log("val_loss", self.layer(batch[0]).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader():
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=4)


def trainer(cb):
    return pl.Trainer(max_epochs=10, callbacks=[cb], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu")


def test_a_stop_ends_fit_at_that_validation_and_its_checkpoint_is_marked(tmp_path):
    from maggy.integrations.lightning import MaggyCallback

    stop = StopAt(4)  # global step 4: the second epoch's validation
    stop.reporter.checkpoint_dir = str(tmp_path)
    marked = []
    stop.reporter.on_checkpoint = marked.append
    cb = MaggyCallback(stop.reporter, metric="val_loss")
    assert cb.ckpt_path is None
    t = trainer(cb)
    t.fit(Model(), loader(), loader())
    points, _ = stop.reporter.take()
    assert t.global_step == 4 and cb.stopped and [s for s, _ in points] == [2, 4] and marked == [2, 4]
    assert cb.ckpt_path == os.path.join(str(tmp_path), "maggy-lightning.ckpt") and os.path.exists(cb.ckpt_path)
    assert str(cb.metric.direction) == "min"


def test_a_metric_lightning_never_logged_names_those_it_did():
    from maggy.integrations.lightning import MaggyCallback

    with pytest.raises(MetricNotLogged, match=r"logged no metric 'val_acc'; it logged \['val_loss'\]"):
        trainer(MaggyCallback(Reporter("t", {}), metric="val_acc")).fit(Model(), loader(), loader())
