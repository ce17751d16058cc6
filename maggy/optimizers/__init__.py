"""Optimizers behind the ask/tell interface, and lookup by name for the config."""

from __future__ import annotations

from typing import Callable

from maggy.optimizers.base import DONE, WAIT, Optimizer, Suggestion
from maggy.optimizers.gridsearch import GridSearch
from maggy.optimizers.randomsearch import RandomSearch

#: Names accepted by ``HyperparameterOptConfig(optimizer=...)``.
OPTIMIZERS: dict[str, Callable[[], Optimizer]] = {
    "randomsearch": RandomSearch,
    "gridsearch": GridSearch,
}

__all__ = ["DONE", "WAIT", "GridSearch", "OPTIMIZERS", "Optimizer", "RandomSearch", "Suggestion"]
