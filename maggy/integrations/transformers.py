"""Hugging Face Transformers: report each evaluation of a ``Trainer`` to maggy, and stop the
training when maggy says so.

``MaggyCallback(reporter, metric="eval_accuracy")`` is a ``transformers.TrainerCallback``. The
metric is a key of the metrics ``Trainer.evaluate`` returns (``eval_loss``, and ``eval_<name>``
for each value ``compute_metrics`` returns). The step is the trainer's ``global_step``; when maggy
stops the trial, training ends after that evaluation (``control.should_training_stop``) and
``trainer.train()`` returns normally, and the trial is EARLY_STOPPED. Under DDP (a gang) every
process evaluates and reports, rank 0's points reach the driver::

    def train_fn(learning_rate, reporter):
        from maggy.integrations.transformers import MaggyCallback
        cb = MaggyCallback(reporter, metric="eval_accuracy")
        args = TrainingArguments("out", learning_rate=learning_rate, eval_strategy="epoch", num_train_epochs=5)
        Trainer(model, args, train_dataset=train, eval_dataset=valid, compute_metrics=accuracy, callbacks=[cb]).train()
        return cb.last

Transformers is imported when ``MaggyCallback`` is first used, never by maggy itself.
"""

from __future__ import annotations

from typing import Any

from maggy.integrations._common import Metric, Reports, lazy_callback


def _callback_class() -> type:
    from transformers import TrainerCallback

    class MaggyCallback(Reports, TrainerCallback):
        """Reports ``metric`` at every evaluation and stops the training when maggy stops the
        trial; ``direction`` overrides what the name says."""

        def __init__(self, reporter: Any, metric: str = "eval_accuracy", direction: str | None = None) -> None:
            super().__init__()
            self.metric = Metric(reporter, metric, "The Trainer's evaluation", direction)

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> Any:
            if self.metric.report(metrics or {}, step=state.global_step):
                control.should_training_stop = True
            return control

    return MaggyCallback


__getattr__ = lazy_callback(__name__, _callback_class)
