"""A trial's own output: what the thread that runs ``train_fn`` prints to ``sys.stdout`` and
``sys.stderr``, and the log records it emits, go line by line to that trial's log (through its
reporter, with the LOG messages and heartbeats), not to the worker's stdout, where every trial's
lines mixed in one executor log.

Workers may share a process (threads of one process in tests, several trials of one Python worker
over time), so the streams are replaced by :class:`ThreadStreams` that route each thread's writes:
a thread that runs a trial writes to that trial, any other to the stream that was there before.
Output of other threads the trial starts, of subprocesses and of C code writing to the file
descriptors directly stays where it went before.

>>> lines = []
>>> with captured(lines.append):
...     print("epoch 1", end="")
...     print(": loss 0.5")
...     logging.getLogger("demo").warning("slow disk")
>>> lines
['epoch 1: loss 0.5', 'WARNING demo: slow disk']
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from typing import Any, Callable, Iterator

from maggy.rpc.messages import MAX_TEXT

_lock = threading.Lock()


class _Lines:
    """One thread's writes to one stream, cut into lines for ``sink``; a carriage return starts
    the line again, as on a terminal (progress bars leave their last state, not every update)."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink, self.rest = sink, ""

    def write(self, text: str) -> None:
        *lines, rest = (self.rest + text).split("\n")
        self.rest = rest.rsplit("\r", 1)[-1]
        if len(self.rest) > MAX_TEXT:  # no newline in sight: a line of its own (the reporter cuts it)
            lines.append(self.rest)
            self.rest = ""
        for line in lines:
            self.sink(line.rsplit("\r", 1)[-1])

    def close(self) -> None:
        if self.rest:
            self.sink(self.rest)
            self.rest = ""


class ThreadStreams:
    """Stands in for ``sys.stdout`` or ``sys.stderr`` while trials run: the writes of a thread that
    runs a trial go to its lines, any other thread's to ``original`` (whose other attributes,
    ``fileno`` and ``encoding`` among them, it passes on)."""

    def __init__(self, original: Any) -> None:
        self.original = original
        self.threads: dict[int, _Lines] = {}

    def write(self, text: str) -> int:
        lines = self.threads.get(threading.get_ident())
        if lines is None:
            return len(text) if self.original is None else self.original.write(text)  # None: a process without one
        lines.write(str(text))
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() not in self.threads and self.original is not None:
            self.original.flush()

    def isatty(self) -> bool:
        return threading.get_ident() not in self.threads and self.original is not None and self.original.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _Records(logging.Handler):
    """The log records of one thread, as lines of its trial's log; those that a handler of their
    own already writes to a captured stream are left to it (no line twice)."""

    def __init__(self, thread: int, sink: Callable[[str], None], streams: tuple[ThreadStreams, ...]) -> None:
        super().__init__()
        self.thread, self.sink, self.streams = thread, sink, streams
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or self._written(record):
            return
        for line in self.format(record).splitlines():
            self.sink(line)

    def _written(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            if any(getattr(h, "stream", None) in self.streams for h in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False


@contextlib.contextmanager
def captured(sink: Callable[[str], None]) -> Iterator[None]:
    """Send what this thread prints (stdout and stderr) and logs to ``sink``, one line at a time,
    until the block ends; the streams are put back once no thread captures any more."""
    me = threading.get_ident()
    with _lock:
        streams = tuple(_wrapped(name) for name in ("stdout", "stderr"))
        for stream in streams:
            stream.threads[me] = _Lines(sink)
    handler = _Records(me, sink, streams)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        with _lock:
            for name, stream in zip(("stdout", "stderr"), streams):
                stream.threads.pop(me).close()
                if not stream.threads and getattr(sys, name) is stream:
                    setattr(sys, name, stream.original)


def _wrapped(name: str) -> ThreadStreams:
    """``sys.<name>``, made a :class:`ThreadStreams` if it is not one yet."""
    stream = getattr(sys, name)
    if not isinstance(stream, ThreadStreams):
        stream = ThreadStreams(stream)
        setattr(sys, name, stream)
    return stream
