"""Exceptions that maggy raises to users and to their training functions."""

from __future__ import annotations


class MaggyError(Exception):
    """Base class of maggy's own errors."""


class InvalidParameterError(MaggyError, ValueError):
    """A user-supplied parameter is invalid; the message names it, what it got and the fix."""


class BackendUnavailableError(MaggyError, RuntimeError):
    """The execution backend (Java, Spark, worker processes) cannot be started."""


class ExperimentFailedError(MaggyError, RuntimeError):
    """The experiment could not run to completion (e.g. every worker was lost)."""


class TrialsFailedError(ExperimentFailedError):
    """The first trials all failed with the same error (fail-fast): the message holds it, its
    traceback and the trial ids. The finished trials are kept, as for any failed experiment."""


class Diverged(MaggyError, ValueError):
    """``train_fn`` returned or reported a NaN or infinite metric: that trial fails as diverged
    (bad parameters, not a bug), so it does not count towards ``fail_fast``."""


class MetricNotLogged(InvalidParameterError):
    """A framework callback's ``metric`` is not among the values its framework logged: the trial fails
    with this error, which lists the names that were logged."""


class DirectionMismatch(InvalidParameterError):
    """A framework callback's metric improves the other way than the experiment optimises (a loss in an
    experiment that maximises): the trial fails with this error, which names the fix, before the
    framework trains."""


class MaggyWarning(UserWarning):
    """Something that will not fail the experiment but probably is not what the user wants."""


class EarlyStopped(Exception):
    """Raised inside ``train_fn`` by ``reporter.broadcast`` once the driver has stopped the trial.

    Let it propagate: maggy records the trial as EARLY_STOPPED with its last reported metric.
    """
