"""The experiment's writer: order kept per file, appends batched, bounded, an outage named, and
on storage always a prefix of what was queued.

The storage is a real LocalStorage on ``tmp_path`` behind :class:`FaultyStorage`, a test double of
a storage client's faults: its calls can be held (a slow disk or NameNode), fail with OSError (a
refused write), or stop for good after some calls (the driver's machine died). A paused HDFS
itself is the platform tests' part.
"""

from __future__ import annotations

import json
import math
import threading

import pytest

from maggy.exceptions import BackendUnavailableError
from maggy.store.events import TrialChanged
from maggy.store.journal import Journal
from maggy.store.storage import LocalStorage
from maggy.store.writer import StorageUnavailableError, StorageWriter
from maggy.trial import Trial, TrialState
from tests.conftest import wait_for

#: Long enough for a writer thread to act, for the checks that something did *not* happen.
QUIET = 0.3


class FaultyStorage(LocalStorage):
    """LocalStorage whose writes can be held (``gate`` cleared), fail (``failures``: the next so
    many calls raise OSError, ``math.inf`` for all) or stop for good after ``stop_after`` calls
    (with ``torn``, the stopping call first writes half its bytes, as a crash mid-append does)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.stopped = threading.Event()  # set only at teardown: "forever" for the test
        self.failures: float = 0
        self.stop_after: int | None = None
        self.torn = False
        #: The next append writes this share of its data, then raises OSError (once).
        self.part_way: float | None = None
        #: Every write begun, in order: (kind, file name, lines or bytes).
        self.calls: list[tuple[str, str, object]] = []
        self.held = 0  # calls waiting now at the gate or the stop
        self._lock = threading.Lock()

    def release(self) -> None:
        self.gate.set()
        self.stopped.set()

    def appends(self) -> list[list[str]]:
        return [list(p) for kind, _, p in self.calls if kind == "append"]  # type: ignore[call-overload]

    def _enter(self, kind: str, path: str, payload: object) -> bool:
        """Record the call, then hold, fail or stop it as set; whether it goes on."""
        with self._lock:
            self.calls.append((kind, path.rsplit("/", 1)[-1], payload))
            number = len(self.calls)
        if self.failures:
            self.failures -= 1
            raise OSError("the storage refused the write")
        stop = self.stop_after is not None and number > self.stop_after
        self._wait(self.stopped if stop else self.gate)
        return not stop

    def _wait(self, event: threading.Event) -> None:
        with self._lock:
            self.held += 1
        event.wait()
        with self._lock:
            self.held -= 1

    def append_lines(self, path, lines):
        lines = list(lines)
        if self.part_way is not None:
            data, share, self.part_way = "".join(line + "\n" for line in lines), self.part_way, None
            with open(path, "a", encoding="utf-8") as f:
                f.write(data[:round(len(data) * share)])
            raise OSError("the answer never came")
        if self.torn and self.stop_after is not None and len(self.calls) == self.stop_after:
            data = "".join(line + "\n" for line in lines)
            with open(path, "a", encoding="utf-8") as f:
                f.write(data[:len(data) // 2])
        if self._enter("append", path, lines):
            super().append_lines(path, lines)

    def write_bytes(self, path, data):
        if self._enter("write", path, data):
            super().write_bytes(path, data)


@pytest.fixture
def storage():
    s = FaultyStorage()
    yield s
    s.release()  # no writer thread stays held after its test


@pytest.fixture
def make_writer(storage):
    writers = []

    def make(**kwargs) -> StorageWriter:
        w = StorageWriter(storage, name="/data/experiments/mnist/run-1", **kwargs).start()
        writers.append(w)
        return w
    yield make
    storage.release()
    for w in writers:
        try:
            w.close(timeout=10)
        except StorageUnavailableError:
            pass  # the outage tests' writers gave up
        assert not w._thread.is_alive()


def lines_of(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def in_flight(storage: FaultyStorage, calls: int = 1) -> None:
    wait_for(lambda: storage.held >= 1 and len(storage.calls) >= calls, timeout=10, what="a write held in storage")


# ---- order and batching -------------------------------------------------------------------

def test_appends_queued_during_a_slow_write_go_out_in_order_as_one_call(tmp_path, storage, make_writer):
    w = make_writer()
    journal, log = tmp_path / "journal.jsonl", tmp_path / "trial.log"
    storage.gate.clear()
    w.append(str(journal), ["0"])
    in_flight(storage)
    for i in range(1, 100):  # 99 more from the loop's thread while the first is on its way
        w.append(str(journal), [str(i)])
        if i % 10 == 0:
            w.append(str(log), [f"log {i}"])
    storage.gate.set()
    w.flush(timeout=10)
    assert lines_of(journal) == [str(i) for i in range(100)]
    assert lines_of(log) == [f"log {i}" for i in range(10, 100, 10)]
    # 100 appends to the journal: the first alone, the 99 queued behind it as one; the log's 9 as one
    assert [(k, name, len(p)) for k, name, p in storage.calls] == [  # type: ignore[arg-type]
        ("append", "journal.jsonl", 1), ("append", "journal.jsonl", 99), ("append", "trial.log", 9)]
    assert w.calls == 3 and w.retries == 0


def test_a_replacement_lands_after_the_appends_queued_before_it(tmp_path, storage, make_writer):
    w = make_writer()
    path, result = tmp_path / "journal.jsonl", tmp_path / "result.json"
    storage.gate.clear()
    w.append(str(path), ["a"])
    in_flight(storage)
    w.append(str(path), ["b"])
    w.write(str(path), b"replaced\n")
    w.append(str(path), ["c"])
    w.append(str(path), ["d"])
    w.write(str(result), b"{}")  # another file's replacement, queued last, goes last
    storage.gate.set()
    w.flush(timeout=10)
    assert lines_of(path) == ["replaced", "c", "d"]
    assert [(k, name, p) for k, name, p in storage.calls] == [
        ("append", "journal.jsonl", ["a"]), ("append", "journal.jsonl", ["b"]),
        ("write", "journal.jsonl", b"replaced\n"), ("append", "journal.jsonl", ["c", "d"]),
        ("write", "result.json", b"{}")]


# ---- backpressure -------------------------------------------------------------------------

def test_a_full_queue_holds_the_caller_until_storage_takes_the_writes(tmp_path, storage, make_writer):
    w = make_writer(capacity=3)
    path = tmp_path / "journal.jsonl"
    storage.gate.clear()
    w.append(str(path), ["0"])
    in_flight(storage)  # the writer holds "0"; three more may wait behind it
    returned = []

    def loop():
        for i in range(1, 11):
            w.append(str(path), [str(i)])
            returned.append(i)
    caller = threading.Thread(target=loop, daemon=True)
    caller.start()
    wait_for(lambda: len(returned) == 3, timeout=10, what="three appends to be queued")
    caller.join(QUIET)
    assert caller.is_alive() and returned == [1, 2, 3]  # the 4th waits: memory stays bounded
    assert len(storage.calls) == 1
    storage.gate.set()
    caller.join(10)
    assert not caller.is_alive() and returned == list(range(1, 11))
    w.flush(timeout=10)
    assert lines_of(path) == [str(i) for i in range(11)]


# ---- an outage ----------------------------------------------------------------------------

def test_a_storage_that_stays_away_stops_the_experiment_with_the_fix(tmp_path, storage, make_writer):
    storage.failures = math.inf
    w = make_writer(outage=0.5)
    path = str(tmp_path / "journal.jsonl")
    w.append(path, ["a"])
    with pytest.raises(StorageUnavailableError) as flushed:
        w.flush(timeout=20)  # returns once the writer gives up, well before the timeout
    message = str(flushed.value)
    assert "/data/experiments/mnist/run-1" in message and "for 0.5s" in message
    assert "OSError: the storage refused the write" in message
    assert "run the same lagom call again" in message
    assert isinstance(flushed.value, BackendUnavailableError)
    assert w.retries >= 1 and len(storage.calls) == w.calls == w.retries + 1
    with pytest.raises(StorageUnavailableError, match="run the same lagom call again"):
        w.check()
    with pytest.raises(StorageUnavailableError, match="/data/experiments/mnist/run-1"):
        w.append(path, ["b"])
    with pytest.raises(StorageUnavailableError):
        w.write(path, b"")
    assert not (tmp_path / "journal.jsonl").exists()


def test_a_caller_held_by_a_full_queue_gets_the_error_when_the_writer_gives_up(tmp_path, storage, make_writer):
    storage.failures = math.inf
    w = make_writer(capacity=1, outage=0.5)
    path = str(tmp_path / "journal.jsonl")
    w.append(path, ["a"])
    wait_for(lambda: storage.calls, timeout=10, what="the first write to be tried")
    w.append(path, ["b"])  # the queue is full now
    with pytest.raises(StorageUnavailableError, match="run the same lagom call again"):
        w.append(path, ["c"])  # held, then told: the loop is never stuck on a dead storage


def test_a_storage_that_fails_twice_then_recovers_loses_nothing(tmp_path, storage, make_writer):
    storage.failures = 2
    w = make_writer(outage=30)
    path = tmp_path / "journal.jsonl"
    for i in range(5):
        w.append(str(path), [str(i)])
    w.write(str(tmp_path / "result.json"), b"{}")
    w.flush(timeout=20)
    assert lines_of(path) == [str(i) for i in range(5)]
    assert (tmp_path / "result.json").read_bytes() == b"{}"
    assert w.retries == 2 and w.error is None
    w.check()


@pytest.mark.parametrize("landed", [0.0, 0.3, 0.5, 1.0], ids=["nothing", "torn", "a-line", "all"])
def test_an_append_that_failed_part_way_is_tried_again_without_damage(tmp_path, storage, make_writer, landed):
    """A try can fail once part of its data reached the file (a full disk, a broken HDFS pipeline,
    an answer lost on the way back): tried again, the file holds each line once, whole, in order."""
    w = make_writer(outage=30)
    path = tmp_path / "journal.jsonl"
    w.append(str(path), ['{"n": 0}'])
    w.flush(timeout=10)
    batch = ['{"n": 1}', '{"n": 2}']
    storage.part_way = landed
    w.append(str(path), batch)
    w.flush(timeout=10)
    assert lines_of(path) == ['{"n": 0}', *batch]
    assert w.retries == 1
    assert Journal(LocalStorage(), str(tmp_path)).records() == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_flush_names_the_writes_still_pending_when_storage_is_held(tmp_path, storage, make_writer):
    w = make_writer()
    path = str(tmp_path / "journal.jsonl")
    storage.gate.clear()
    w.append(path, ["a"])
    in_flight(storage)
    w.append(path, ["b"])
    w.write(str(tmp_path / "result.json"), b"{}")
    with pytest.raises(StorageUnavailableError,
                       match=r"^3 writes to /data/experiments/mnist/run-1 are still not done after 0.2s"):
        w.flush(timeout=0.2)
    w.check()  # a slow storage is not yet an outage: the writer goes on
    storage.gate.set()
    w.flush(timeout=10)
    assert lines_of(tmp_path / "journal.jsonl") == ["a", "b"]


# ---- crash consistency --------------------------------------------------------------------

@pytest.mark.parametrize("stop_after", [0, 1, 2, 5, 9])
@pytest.mark.parametrize("torn", [False, True], ids=["whole", "torn"])
def test_storage_always_holds_a_prefix_of_what_was_queued(tmp_path, storage, make_writer, stop_after, torn):
    """The driver dies (its storage calls stop for good) after ``stop_after`` calls, with appends
    of one to three lines, a trial log and a replacement queued meanwhile: the journal on disk is
    the first k lines queued, for some k, never reordered, never with a gap; a torn last line is
    the one thing past that prefix, and the journal's reader leaves it out."""
    storage.stop_after, storage.torn = stop_after, torn
    w = make_writer()
    path = tmp_path / "journal.jsonl"
    queued: list[str] = []
    for i in range(60):
        lines = [json.dumps({"i": i, "part": p}) for p in range(1 + i % 3)]
        w.append(str(path), lines)
        queued += lines
        if i % 7 == 0:
            w.append(str(tmp_path / "trial.log"), [f"log {i}"])
        if i == 30:
            w.write(str(tmp_path / "result.json"), b"{}")
        if i % 4 == 0:  # let the writer take batches of varied sizes meanwhile
            wait_for(lambda: storage.held or not w._ops, timeout=10, what="the writer to take the queue")
    wait_for(lambda: storage.held or w._done == w._queued, timeout=10, what="the writer to stop or finish")
    text = path.read_text() if path.exists() else ""
    whole = text[:text.rfind("\n") + 1]
    on_disk = whole.splitlines()
    assert on_disk == queued[:len(on_disk)]  # a prefix: in order, no gap
    done = storage.calls if not storage.held else storage.calls[:stop_after]  # the calls that returned
    written = [line for kind, name, p in done if kind == "append" and name == path.name
               for line in p]  # type: ignore[attr-defined]
    # nothing that returned is lost; past it, only part of the call that was cut (torn)
    assert on_disk == written or torn and on_disk[:len(written)] == written
    if storage.held:
        assert len(on_disk) < len(queued) or storage.calls[-1][1] != path.name
    assert text == whole or (torn and "".join(q + "\n" for q in queued).startswith(text))
    records = Journal(LocalStorage(), str(tmp_path)).records()
    assert records == [json.loads(q) for q in on_disk]  # a torn last line left out


def test_the_journal_through_a_writer_reads_back_what_was_journaled(tmp_path, storage, make_writer):
    w = make_writer()
    journal = Journal(storage, str(tmp_path), w)
    storage.gate.clear()
    t = Trial.create({"x": 0.5})
    t.transition(TrialState.RUNNING)
    running = t.view()
    journal.append(TrialChanged(running))
    in_flight(storage)
    t.update(history=[(0, 0.1)], metric=0.1)
    t.transition(TrialState.FINALIZED)
    journal.on_trial_change(t.view())
    journal.on_step_end()  # returns at once: the storage is still held
    assert not (tmp_path / "journal.jsonl").exists()
    storage.gate.set()
    w.flush(timeout=10)
    assert [e.trial for e in journal.read()] == [running, t.view()]
