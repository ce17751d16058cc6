"""Early-stopping policies, apart from optimizers, and lookup by name for the config."""

from __future__ import annotations

from maggy.search.earlystop.asha import ASHAStopping
from maggy.search.earlystop.base import EarlyStopPolicy, NoStopping
from maggy.search.earlystop.median import MedianStoppingRule

#: Names accepted by ``HyperparameterOptConfig(es_policy=...)``.
POLICY_NAMES = ("median", "asha", "none")


def make_policy(name: str, es_min: int) -> EarlyStopPolicy:
    """The policy called ``name`` (validated by the config), with its default parameters."""
    if name == "median":
        return MedianStoppingRule(min_trials=es_min)
    if name == "asha":
        return ASHAStopping()
    return NoStopping()


__all__ = ["ASHAStopping", "EarlyStopPolicy", "MedianStoppingRule", "NoStopping", "POLICY_NAMES",
           "make_policy"]
