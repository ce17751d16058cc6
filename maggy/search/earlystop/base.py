"""The interface of early-stopping policies: a pure decision on one running trial."""

from __future__ import annotations

import abc
from typing import Sequence

from maggy.trial import FrozenTrial


class EarlyStopPolicy(abc.ABC):
    """Decides whether a running trial should stop, given the finished ones.

    The driver asks every ``es_interval`` seconds about each running trial that has reported a
    metric; a True answer sends STOP on that trial's next heartbeat. Policies do no I/O.
    """

    @abc.abstractmethod
    def should_stop(self, trial: FrozenTrial, finished: Sequence[FrozenTrial], direction: str) -> bool:
        """Whether ``trial`` (RUNNING, with at least one metric) should stop now."""


class NoStopping(EarlyStopPolicy):
    """Never stops a trial."""

    def should_stop(self, trial: FrozenTrial, finished: Sequence[FrozenTrial], direction: str) -> bool:
        return False
