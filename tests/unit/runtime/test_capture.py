"""A trial's prints and log records reach its own log; other threads' output stays where it was."""

from __future__ import annotations

import io
import logging
import pathlib
import sys
import threading

from maggy import Searchspace, experiment
from maggy.runtime.capture import ThreadStreams, captured
from tests.helpers import ThreadBackend


def test_each_thread_writes_to_its_own_sink_and_the_streams_are_put_back(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    mine, theirs = [], []
    inside = threading.Event()
    leave = threading.Event()

    def other():
        with captured(theirs.append):
            print("theirs")
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    with captured(mine.append):
        print("progress 10%\rprogress 100%")
        print("mine", end="")  # a partial line, kept until the block ends
        logging.getLogger("user").error("went wrong")
    assert isinstance(sys.stdout, ThreadStreams)  # the other trial still captures
    print("not a trial's")
    leave.set()
    thread.join(10)
    assert mine == ["progress 100%", "ERROR user: went wrong", "mine"] and theirs == ["theirs"]
    assert sys.stdout is out and out.getvalue() == "not a trial's\n"


def test_a_record_that_a_handler_writes_to_the_captured_stream_is_not_doubled():
    lines = []
    logger = logging.getLogger("maggy-test-own-handler")
    with captured(lines.append):
        handler = logging.StreamHandler(sys.stderr)  # train_fn configures logging to stderr
        logger.addHandler(handler)
        try:
            logger.warning("once")
        finally:
            logger.removeHandler(handler)
    assert lines == ["once"]


def test_what_train_fn_prints_is_in_its_trial_log_and_its_last_lines_are_shown(tmp_path, capsys):
    def train(x, reporter):
        for i in range(50):
            print(f"MARKER {x:.3f} line {i}")
        print("to stderr", file=sys.stderr)
        reporter.log("from the reporter")
        return x

    result = experiment.lagom(train, Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=2, name="printer", es_policy="none",
                              experiment_dir=str(tmp_path), backend=ThreadBackend(), verbose=True)
    shown = capsys.readouterr().out
    for row in result.trials.itertuples():
        log = (pathlib.Path(result.experiment_dir) / "trials" / f"{row.trial_id}.log").read_text().splitlines()
        assert log[:50] == [f"MARKER {row.x:.3f} line {i}" for i in range(50)]
        assert log[50:] == ["to stderr", "from the reporter"]
    assert "MARKER" not in shown.split("(printer-")[0]  # nothing printed before the trials' own prefixed lines
    assert "(printer-1) from the reporter" in shown and "(printer-2) from the reporter" in shown
    assert "more lines in" in shown and "/trials/" in shown
    assert "Trial logs (what train_fn printed and logged): " in result.summary()
