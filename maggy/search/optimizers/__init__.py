"""Optimizers behind the ask/tell interface, and lookup by name for the config."""

from __future__ import annotations

from maggy.search.optimizers.asha import ASHA, Hyperband
from maggy.search.optimizers.base import DONE, WAIT, Optimizer, Suggestion
from maggy.search.optimizers.gp import GP
from maggy.search.optimizers.gridsearch import GridSearch
from maggy.search.optimizers.optuna import OptunaSampler
from maggy.search.optimizers.pbt import PBT
from maggy.search.optimizers.randomsearch import RandomSearch
from maggy.search.optimizers.tpe import TPE

#: Names accepted by ``HyperparameterOptConfig(optimizer=...)``; each makes the default instance.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "randomsearch": RandomSearch,
    "gridsearch": GridSearch,
    "asha": ASHA,
    "hyperband": Hyperband,
    "tpe": TPE,
    "gp": GP,
    "pbt": PBT,
}

__all__ = ["ASHA", "DONE", "GP", "PBT", "WAIT", "GridSearch", "Hyperband", "OPTIMIZERS", "Optimizer",
           "OptunaSampler", "RandomSearch", "Suggestion", "TPE"]
