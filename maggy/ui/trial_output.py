"""With ``verbose``, the latest lines of the trials' output in the notebook or terminal, as Ray Tune
shows its trials' output: each prefixed by the trial's name (``<experiment>-<n>``, as in the
progress view and MLflow), at most one block every ``interval`` seconds, the last ``last`` lines of
each trial that wrote since the block before. Every line is in ``trials/<trial id>.log``."""

from __future__ import annotations

import collections
import sys
import time
from typing import IO, Sequence

from maggy.callbacks import Callback, ExperimentInfo
from maggy.trial import FrozenTrial, run_name

#: Seconds between two blocks of trial output, and the lines of each trial a block shows.
INTERVAL = 5.0
LAST_LINES = 3


class TrialOutput(Callback):
    """Shows the trials' latest log lines, rate-limited.

    >>> import io
    >>> out = io.StringIO()
    >>> shown = TrialOutput("demo", out=out, last=2)
    >>> shown.on_trial_log(FrozenTrial("t1", {}, number=3), ["epoch 0", "epoch 1", "epoch 2"])
    >>> shown.on_step_end()
    >>> print(out.getvalue(), end="")
    (demo-3) ... 1 more lines in trials/t1.log
    (demo-3) epoch 1
    (demo-3) epoch 2
    """

    def __init__(self, name: str, interval: float = INTERVAL, last: int = LAST_LINES, out: IO[str] | None = None) -> None:
        self.name, self.interval, self.last, self.out = name, interval, last, out
        self.trials_dir = "trials"
        #: Per trial that wrote since the last block: its number, its last lines, how many it wrote.
        self._new: dict[str, tuple[int, collections.deque[str], int]] = {}
        self._shown = float("-inf")

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        self.trials_dir = f"{info.directory.rstrip('/')}/trials"

    def on_trial_log(self, trial: FrozenTrial, lines: Sequence[str]) -> None:
        number, tail, count = self._new.get(trial.trial_id, (trial.number, collections.deque(maxlen=self.last), 0))
        tail.extend(lines)
        self._new[trial.trial_id] = (number, tail, count + len(lines))

    def on_step_end(self) -> None:
        if self._new and time.monotonic() - self._shown >= self.interval:
            self._show()

    def on_experiment_end(self, result, outcome: str) -> None:
        if self._new:
            self._show()

    def _show(self) -> None:
        self._shown = time.monotonic()
        block = []
        for trial_id, (number, tail, count) in self._new.items():
            prefix = f"({run_name(self.name, number)})"
            if count > len(tail):
                block.append(f"{prefix} ... {count - len(tail)} more lines in {self.trials_dir}/{trial_id}.log")
            block += [f"{prefix} {line}" for line in tail]
        self._new.clear()
        print("\n".join(block), file=self.out or sys.stdout, flush=True)
