"""PyTorch Lightning: report each validation to maggy, stop the Trainer when maggy says so, keep a
checkpoint that a promoted or moved trial continues from, and train a gang with DDP.

``MaggyCallback(reporter, metric="val_acc")`` is a Lightning ``Callback`` (of ``lightning.pytorch``
where it is installed, else of ``pytorch_lightning``; a Trainer of either takes it). The metric is
a key of ``trainer.callback_metrics`` (what the module ``self.log``-ged). At the end of each
validation (not the sanity check) it reports the metric at ``trainer.global_step``; when maggy
stops the trial, the Trainer stops there (``trainer.should_stop``), ``fit`` returns normally and
the trial is EARLY_STOPPED (an ``EarlyStopped`` that ``reporter.broadcast`` raises in your own code
ends the trial the same way). Then it saves a Lightning checkpoint in ``reporter.checkpoint_dir``
and marks it (``reporter.checkpoint()``): pass ``ckpt_path=cb.ckpt_path`` to ``fit``, so that a
trial that ASHA promotes, or one whose executor was lost, continues from there.

In a gang (``workers_per_trial=k``), ``trainer_args(reporter)`` gives the Trainer the DDP strategy
on the process group maggy set up (one device per worker, CPU or its GPU); without a gang it is
empty, so one ``train_fn`` serves both. Every rank reports (a collective that shares the stop),
rank 0's points reach the driver, and rank 0's checkpoint is the trial's::

    def train_fn(lr, reporter, budget=10):
        from maggy.integrations.lightning import MaggyCallback, trainer_args
        cb = MaggyCallback(reporter, metric="val_acc")
        trainer = lightning.pytorch.Trainer(max_epochs=int(budget), callbacks=[cb], **trainer_args(reporter))
        trainer.fit(Model(lr), train_loader, val_loader, ckpt_path=cb.ckpt_path)
        return cb.last

Lightning is imported when ``MaggyCallback`` or ``trainer_args`` is first used, never by maggy itself.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

from maggy.integrations._common import Metric, Reports, lazy_callback

#: The checkpoint's file in ``reporter.checkpoint_dir``.
CHECKPOINT = "maggy-lightning.ckpt"


def _lightning() -> tuple[Any, Any]:
    """Lightning's trainer package and its fabric: ``lightning.pytorch`` where installed, else
    ``pytorch_lightning`` (with ``lightning_fabric``)."""
    try:
        return importlib.import_module("lightning.pytorch"), importlib.import_module("lightning.fabric")
    except ImportError:
        try:
            return importlib.import_module("pytorch_lightning"), importlib.import_module("lightning_fabric")
        except ImportError:
            raise ImportError("maggy.integrations.lightning needs Lightning: pip install lightning") from None


def _callback_class() -> type:
    pl, _ = _lightning()
    base: Any = pl.Callback

    class MaggyCallback(Reports, base):
        """Reports ``metric`` at each validation's end, stops the Trainer when maggy stops the
        trial, and saves a checkpoint there (``checkpoint=False``: none); ``direction``
        overrides what the name says."""

        def __init__(self, reporter: Any, metric: str = "val_acc", direction: str | None = None,
                     checkpoint: bool = True) -> None:
            super().__init__()
            self.metric = Metric(reporter, metric, "Lightning (trainer.callback_metrics)", direction)
            self.checkpoint = checkpoint

        @property
        def ckpt_path(self) -> str | None:
            """The checkpoint this trial saved in an earlier run, for ``trainer.fit(ckpt_path=...)``;
            None when there is none (the first run)."""
            directory = self.metric.reporter.checkpoint_dir
            path = os.path.join(directory, CHECKPOINT) if directory else None
            return path if path and os.path.exists(path) else None

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.sanity_checking:
                return
            if self.metric.report(dict(trainer.callback_metrics), step=trainer.global_step):
                trainer.should_stop = True
            directory = self.metric.reporter.checkpoint_dir
            if self.checkpoint and directory:
                trainer.save_checkpoint(os.path.join(directory, CHECKPOINT))  # every rank: it waits for all; rank 0 writes
                if self.metric.chief:
                    self.metric.reporter.checkpoint()

    return MaggyCallback


__getattr__ = lazy_callback(__name__, _callback_class)


def trainer_args(reporter: Any) -> dict[str, Any]:
    """The Trainer's arguments for this trial's gang: DDP on the process group maggy set up, one
    device per worker (its GPU under NCCL, else the CPU); ``{}`` without a gang."""
    if getattr(reporter, "world_size", 1) <= 1:
        return {}
    import torch.distributed as dist

    if not dist.is_initialized():
        raise RuntimeError("maggy set up no process group in this worker; trainer_args is for workers_per_trial > 1")
    pl, _ = _lightning()
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    world = dist.get_world_size()
    if world % local_size:
        raise RuntimeError(f"Lightning's DDP needs the same number of workers on every host; this gang of {world} has "
                           f"{local_size} on this one. Give each host one worker of the gang, or the same number.")
    backend = dist.get_backend()
    strategy = pl.strategies.DDPStrategy(cluster_environment=_environment_class()(), process_group_backend=backend)
    return {"strategy": strategy, "accelerator": "gpu" if backend == "nccl" else "cpu", "devices": local_size,
            "num_nodes": world // local_size}


@functools.cache
def _environment_class() -> type:
    _, fabric = _lightning()
    base: Any = fabric.plugins.environments.ClusterEnvironment

    class MaggyEnvironment(base):
        """Where this worker stands in maggy's gang, as Lightning asks for it: the process group
        exists already and its processes were started by maggy, not by Lightning."""

        @property
        def creates_processes_externally(self) -> bool:
            return True

        @property
        def main_address(self) -> str:
            return os.environ["MASTER_ADDR"]

        @property
        def main_port(self) -> int:
            return int(os.environ["MASTER_PORT"])

        @staticmethod
        def detect() -> bool:
            return False

        def world_size(self) -> int:
            import torch.distributed as dist

            return dist.get_world_size()

        def set_world_size(self, size: int) -> None:
            pass  # maggy's group decides

        def global_rank(self) -> int:
            import torch.distributed as dist

            return dist.get_rank()

        def set_global_rank(self, rank: int) -> None:
            pass

        def local_rank(self) -> int:
            return int(os.environ.get("LOCAL_RANK", "0"))

        def node_rank(self) -> int:
            return self.global_rank() // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))

    MaggyEnvironment.__module__ = __name__
    MaggyEnvironment.__qualname__ = "MaggyEnvironment"
    return MaggyEnvironment
