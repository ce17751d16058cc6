"""A reporter for the framework callbacks' tests, whose driver asks for a stop at a given step."""

from __future__ import annotations

from maggy.runtime.reporter import Reporter


class StopAt:
    """``.reporter`` is a real Reporter; once ``step`` is reported the driver asks for a stop."""

    def __init__(self, step):
        self.reporter = Reporter("t", {})
        self.step = step
        broadcast = self.reporter.broadcast

        def stop_at(metric, step=None):
            if step == self.step:
                self.reporter.request_stop()
            broadcast(metric, step)
        self.reporter.broadcast = stop_at
