"""MLflow's worker half: the active MLflow run in which ``train_fn`` runs.

Workers open their trial's run themselves, so that plain ``mlflow.log_metric`` or
``mlflow.<flavor>.log_model`` calls inside ``train_fn`` land in it; the run id goes back to the
driver with the trial's metrics. The driver's half is :mod:`maggy.integrations.mlflow.tracker`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator

from maggy.runtime.tracking import TrialTracking

log = logging.getLogger(__name__)

# maggy's own MLflow calls: no long retry loops, and no "View run ... at" line on stdout for each
# trial's run (the parent run and result.best_run_id say where the runs are)
_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
         "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


@contextlib.contextmanager
def fast_fail() -> Iterator[None]:
    """No long retry loops for calls that must not hold anything up, and no links printed."""
    old = {k: os.environ.get(k) for k in _FAST}
    os.environ.update(_FAST)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass(frozen=True)
class MlflowTrialTracking(TrialTracking):
    """What a worker needs to open trial runs; travels in the WorkerSpec, and its fields are what
    the journal keeps of MLflow (the tracker's ``state``)."""

    uri: str
    experiment_id: str
    parent_run_id: str
    log_trials: str = "all"

    @contextlib.contextmanager
    def trial(self, trial_id: str, run_id: str | None, run_name: str | None, world_size: int = 1,
              chief: bool = True, first: bool = False) -> Iterator[str | None]:
        """Make the trial's run (``run_id``, or a new nested run named ``run_name``) MLflow's active
        run for ``train_fn``.

        Yields the run id, or None when MLflow cannot be reached (the trial runs anyway) or the
        trial's run is not this worker's: trials get no run of their own (``log_trials`` other than
        ``"all"``), or this worker holds a rank other than 0 of a gang (``chief`` False). Runs that
        ``mlflow`` calls in ``train_fn`` started by themselves and left open are ended, and the
        trial's own run stops being the active one (the driver ends it), so that none leaks into
        this worker's next trial.
        """
        run_id = (_activate(self, trial_id, run_id, run_name, world_size, first)
                  if self.log_trials == "all" and chief else None)
        try:
            yield run_id
        finally:
            if "mlflow" in sys.modules:  # else no run can be open, and importing it costs seconds
                with contextlib.suppress(Exception), fast_fail():
                    import mlflow
                    while (active := mlflow.active_run()) is not None:
                        if active.info.run_id != run_id or not _release():
                            mlflow.end_run()


def _release() -> bool:
    """Let go of the trial's own run, which is the active one, without ending it: the driver ends
    it with the trial's state (FINISHED, KILLED or FAILED) in the same request as its last
    metrics, so ``mlflow.end_run``'s request here would be a second, wrong end, and a third of a
    trial's requests to the server, which caps turnover. MLflow has no public call for this: its
    active-run stack is popped, and False (the caller ends the run) where MLflow has changed it."""
    import mlflow
    from mlflow.tracking import fluent

    stack = getattr(getattr(fluent, "_active_run_stack", None), "get", lambda: None)()
    if not isinstance(stack, list) or not stack:
        return False
    try:
        mlflow.flush_async_logging()  # what train_fn logged with synchronous=False, as end_run would
    except Exception as exc:  # noqa: BLE001 - the run is let go all the same
        log.warning("maggy: could not flush what the trial logged to MLflow asynchronously: %s", exc)
    finally:
        stack.pop()
    return True


def client_for(uri: str) -> Any:
    from mlflow.tracking import MlflowClient
    return MlflowClient(tracking_uri=uri)


def trial_tags(parent_run_id: str, trial_id: str, world_size: int = 1) -> dict[str, str]:
    """A trial run's tags: nested in the experiment's parent run, the trial's id, and the size of
    its gang (``maggy.world_size``) when it trains on several workers."""
    tags = {"mlflow.parentRunId": parent_run_id, "maggy.trial_id": trial_id}
    if world_size > 1:
        tags["maggy.world_size"] = str(world_size)
    return tags


def find_trial_run(client: Any, experiment_id: str, parent_run_id: str, trial_id: str) -> str | None:
    """The run the trial already has, if any: a worker or driver that opened it may have died
    before its id reached the journal (a lost executor, a killed application master), and it is
    taken up again, not doubled."""
    found = client.search_runs([experiment_id], max_results=1, order_by=["attributes.start_time ASC"],
                               filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and "
                                             f"tags.`maggy.trial_id` = '{trial_id}'")
    return found[0].info.run_id if found else None


def create_trial_run(client: Any, experiment_id: str, parent_run_id: str, trial_id: str,
                     run_name: str | None = None, world_size: int = 1) -> str:
    """The trial's run, created when it has none (the driver's, for a trial whose worker opened none)."""
    return find_trial_run(client, experiment_id, parent_run_id, trial_id) or client.create_run(
        experiment_id, run_name=run_name or f"trial-{trial_id}",
        tags=trial_tags(parent_run_id, trial_id, world_size)).info.run_id


def _activate(spec: MlflowTrialTracking, trial_id: str, run_id: str | None, run_name: str | None,
              world_size: int, first: bool) -> str | None:
    """The trial's run as MLflow's active run, created with it in one request when the trial
    has none (``first``: it cannot have one yet, so none is looked for); None when it fails (an
    outage must not stop the trial)."""
    try:
        import mlflow
        with fast_fail():
            mlflow.set_tracking_uri(spec.uri)
            if run_id is None and not first:
                run_id = find_trial_run(client_for(spec.uri), spec.experiment_id, spec.parent_run_id, trial_id)
            if run_id is None:
                return mlflow.start_run(experiment_id=spec.experiment_id, run_name=run_name or f"trial-{trial_id}",
                                        tags=trial_tags(spec.parent_run_id, trial_id, world_size),
                                        log_system_metrics=False).info.run_id  # maggy samples its own
            mlflow.start_run(run_id=run_id, log_system_metrics=False)  # so that log_model & co. attach to it
    except Exception as exc:
        log.warning("maggy: could not open the MLflow run of trial %s: %s", trial_id, exc)
    return run_id
