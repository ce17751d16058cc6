"""maggy: asynchronous hyperparameter tuning on resident Spark executors.

>>> from maggy import experiment, Searchspace
>>> sp = Searchspace(lr=("DOUBLE", [1e-4, 1e-1], "log"))
>>> # result = experiment.lagom(train_fn, sp)

The driver-side API (``experiment``, ``HyperparameterOptConfig``, ``Result``) loads on first
use, so that workers, which import only ``maggy.runtime.worker``, start without pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

from maggy.exceptions import EarlyStopped, InvalidParameterError, MaggyError, MaggyWarning, TrialsFailedError
from maggy.runtime.reporter import Reporter
from maggy.search.searchspace import Searchspace

__version__ = "0.1.0"

_LAZY = {"experiment": ("maggy.experiment", None),
         "HyperparameterOptConfig": ("maggy.config", "HyperparameterOptConfig"),
         "Result": ("maggy.result", "Result"), "load_result": ("maggy.store.replay", "load_result"),
         "Callback": ("maggy.callbacks", "Callback"), "plot": ("maggy.ui.plot", None)}

__all__ = ["Callback", "EarlyStopped", "HyperparameterOptConfig", "InvalidParameterError", "MaggyError", "MaggyWarning",
           "Reporter", "Result", "Searchspace", "TrialsFailedError", "experiment", "load_result", "plot",
           "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'maggy' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
