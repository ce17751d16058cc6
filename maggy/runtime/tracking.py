"""The worker's side of tracking: what a tracker does around each ``train_fn`` call on a worker.

A tracker (see :mod:`maggy.integrations.tracker`) may hand the workers a :class:`TrialTracking`,
which travels in the :class:`~maggy.runtime.worker.WorkerSpec`; the worker enters it around every
trial. A tracker that opens a record of the trial there (MLflow's run, so that ``mlflow`` calls in
``train_fn`` land in it) yields its id, which goes back to the driver with the trial's metrics.

>>> with trial_runs((TrialTracking(),), "t1", None, "exp-1") as run_id:
...     print(run_id)
None
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence


class TrialTracking:
    """A tracker's worker-side half; it must pickle (it travels to the executors) and may import
    only what the worker side may (no driver-side maggy module)."""

    @contextlib.contextmanager
    def trial(self, trial_id: str, run_id: str | None, run_name: str | None, world_size: int = 1,
              chief: bool = True, first: bool = False) -> Iterator[str | None]:
        """Around one run of ``train_fn`` for ``trial_id`` (``run_id``: the trial's record from an
        earlier run, if known; ``chief``: rank 0 of its gang; ``first``: the trial never ran, so
        no record of it can exist yet). Yields the trial's record id, or None."""
        yield None


@contextlib.contextmanager
def trial_runs(halves: Sequence[TrialTracking], trial_id: str, run_id: str | None, run_name: str | None,
               world_size: int = 1, chief: bool = True, first: bool = False) -> Iterator[str | None]:
    """Every tracker's worker half around one run of ``train_fn``; yields the first record id
    one of them gives (the trial's run, reported back to the driver)."""
    with contextlib.ExitStack() as stack:
        ids = [stack.enter_context(h.trial(trial_id, run_id, run_name, world_size, chief, first)) for h in halves]
        yield next((i for i in ids if i is not None), None)
