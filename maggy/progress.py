"""Live progress of an experiment: a bar in Jupyter, a line on a terminal, nothing when quiet."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Counts:
    done: int
    total: int
    running: int
    early_stopped: int
    failed: int
    best: float | None


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """Shows :class:`Counts`; refreshes at most every ``min_interval`` seconds."""

    def __init__(self, name: str, verbose: bool = True, min_interval: float = 0.5) -> None:
        self.name = name
        self.verbose = verbose
        self.min_interval = min_interval
        self._last = 0.0
        self._last_text = ""
        self._handle = None
        self._notebook = verbose and _in_notebook()
        self._tty = verbose and sys.stderr.isatty()
        self._last_done = -1

    def text(self, c: Counts) -> str:
        width = 24
        filled = int(width * c.done / c.total) if c.total else width
        best = "-" if c.best is None else f"{c.best:.5g}"
        return (f"{self.name} [{'#' * filled}{'.' * (width - filled)}] {c.done}/{c.total} done, "
                f"{c.running} running, {c.early_stopped} early-stopped, {c.failed} failed, best {best}")

    def update(self, counts: Callable[[], Counts], force: bool = False) -> None:
        """Show ``counts()``; it is only computed when a refresh is due."""
        now = time.monotonic()
        if not self.verbose or (not force and now - self._last < self.min_interval):
            return
        self._last = now
        c = counts()
        text = self.text(c)
        if text == self._last_text:
            return
        self._last_text = text
        if self._notebook:
            from IPython.display import display, update_display
            if self._handle is None:
                self._handle = display({"text/plain": text}, raw=True, display_id=True)
            else:
                update_display({"text/plain": text}, raw=True, display_id=self._handle.display_id)
        elif self._tty:
            sys.stderr.write("\r" + text)
            sys.stderr.flush()
        elif force or c.done != self._last_done:
            self._last_done = c.done
            print(text, file=sys.stderr, flush=True)

    def close(self, counts: Callable[[], Counts]) -> None:
        self.update(counts, force=True)
        if self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()
