"""maggy and the platform's services: trackers (MLflow with its registry, TensorBoard) and the
WebHDFS artifact store; and maggy in the training frameworks: each framework's callback
(``xgboost``, ``lightgbm``, ``keras``, ``transformers``, ``lightning``), which reports and stops
a trial from inside the framework's own loop, and the workers' half of :mod:`maggy.sklearn`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maggy.config import HyperparameterOptConfig
    from maggy.integrations.tracker import Tracker

#: Every tracker, as ``module:function``; the function takes the config and returns the tracker
#: when the config turns it on, else None. A new tracker is its module and one line here.
TRACKERS = (
    "maggy.integrations.mlflow.tracker:configured",
    "maggy.integrations.tensorboard:configured",
)


def trackers_for(config: "HyperparameterOptConfig") -> list["Tracker"]:
    """The trackers ``config`` turns on, in the order of :data:`TRACKERS`; none checked yet."""
    found = []
    for entry in TRACKERS:
        module, function = entry.split(":")
        tracker = getattr(importlib.import_module(module), function)(config)
        if tracker is not None:
            found.append(tracker)
    return found
