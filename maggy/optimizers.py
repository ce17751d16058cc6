"""The optimizers (their home is :mod:`maggy.search.optimizers`), for ``optimizer=``."""

from maggy.search.optimizers import (
                                     ASHA,
                                     DONE,
                                     GP,
                                     OPTIMIZERS,
                                     PBT,
                                     TPE,
                                     WAIT,
                                     GridSearch,
                                     Hyperband,
                                     Optimizer,
                                     OptunaSampler,
                                     RandomSearch,
                                     Suggestion,
)

__all__ = ["ASHA", "DONE", "GP", "OPTIMIZERS", "PBT", "TPE", "WAIT", "GridSearch", "Hyperband", "Optimizer",
           "OptunaSampler", "RandomSearch", "Suggestion"]
