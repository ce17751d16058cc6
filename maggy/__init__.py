"""maggy: asynchronous hyperparameter tuning on resident Spark executors.

>>> from maggy import experiment, Searchspace
>>> sp = Searchspace(lr=("DOUBLE", [1e-4, 1e-1], "log"))
>>> # result = experiment.lagom(train_fn, sp)
"""

from maggy import experiment
from maggy.config import HyperparameterOptConfig
from maggy.exceptions import EarlyStopped, InvalidParameterError, MaggyError
from maggy.reporter import Reporter
from maggy.result import Result
from maggy.searchspace import Searchspace

__version__ = "0.1.0"

__all__ = ["EarlyStopped", "HyperparameterOptConfig", "InvalidParameterError", "MaggyError",
           "Reporter", "Result", "Searchspace", "experiment", "__version__"]
