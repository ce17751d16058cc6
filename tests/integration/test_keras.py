"""maggy.integrations.keras in a lagom (Keras 3 on PyTorch): the median rule stops the poor
trials after an epoch, and Keras's own history shows it."""

from __future__ import annotations

import importlib.util
import os

import pytest

from tests.integration.frameworks import check_median_run, hold, median_run

if importlib.util.find_spec("keras") is None:  # not imported here: only the workers need it
    pytest.skip("needs keras", allow_module_level=True)
os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on PyTorch in the workers
EPOCHS = 12


def train(lr, reporter):
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    from sklearn.datasets import make_classification

    from maggy.integrations.keras import MaggyCallback

    class Hold(keras.callbacks.Callback):  # after the epoch's report: a poor trial waits for its stop
        def on_epoch_end(self, epoch, logs=None):
            hold(reporter, lr)

    keras.utils.set_random_seed(0)
    x, y = make_classification(300, 8, random_state=0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.SGD(lr), "binary_crossentropy", metrics=["accuracy"])
    cb = MaggyCallback(reporter, metric="val_accuracy")
    history = model.fit(x[:240], y[:240], validation_data=(x[240:], y[240:]), epochs=EPOCHS, batch_size=32, verbose=0,
                        callbacks=[cb, Hold()])
    return {"metric": cb.last, "epochs": len(history.history["loss"]), "framework_last": history.history["val_accuracy"][-1]}


def test_the_median_rule_stops_poor_trials_after_an_epoch(tmp_path):
    result = median_run(train, tmp_path, "keras", direction="max")
    check_median_run(result, "epochs", EPOCHS)
