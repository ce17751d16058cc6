"""The early-stopping policies (their home is :mod:`maggy.search.earlystop`), for ``es_policy=``."""

from maggy.search.earlystop import (
    POLICY_NAMES,
    ASHAStopping,
    EarlyStopPolicy,
    MedianStoppingRule,
    NoStopping,
    make_policy,
)

__all__ = ["ASHAStopping", "EarlyStopPolicy", "MedianStoppingRule", "NoStopping", "POLICY_NAMES", "make_policy"]
