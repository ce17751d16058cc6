"""Keras 3: report each epoch's metric to maggy, and stop ``fit`` when maggy says so.

``MaggyCallback(reporter, metric="val_accuracy")`` is a ``keras.callbacks.Callback`` for any
backend (JAX, PyTorch, TensorFlow). The metric is a key of the logs Keras hands its callbacks
(``val_`` for the validation data, as in ``history.history``). The step is the epoch (0, 1, ...);
when maggy stops the trial, ``fit`` ends after that epoch (``model.stop_training``) and returns
its history normally, and the trial is EARLY_STOPPED::

    def train_fn(lr, units, reporter):
        import keras
        from maggy.integrations.keras import MaggyCallback
        cb = MaggyCallback(reporter, metric="val_accuracy")
        model = build(units)
        model.compile(keras.optimizers.Adam(lr), "binary_crossentropy", metrics=["accuracy"])
        model.fit(x, y, validation_split=0.2, epochs=30, callbacks=[cb])
        return cb.last

Keras is imported when ``MaggyCallback`` is first used, never by maggy itself (set
``KERAS_BACKEND`` before that, as for any use of Keras).
"""

from __future__ import annotations

from typing import Any

from maggy.integrations._common import Metric, Reports, lazy_callback


def _callback_class() -> type:
    import keras

    class MaggyCallback(Reports, keras.callbacks.Callback):
        """Reports ``metric`` at the end of every epoch and stops training when maggy stops the
        trial; ``direction`` overrides what the name says."""

        def __init__(self, reporter: Any, metric: str = "val_accuracy", direction: str | None = None) -> None:
            super().__init__()
            self.metric = Metric(reporter, metric, "Keras", direction)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.metric.report(logs or {}, step=epoch):
                self.model.stop_training = True

    return MaggyCallback


__getattr__ = lazy_callback(__name__, _callback_class)
