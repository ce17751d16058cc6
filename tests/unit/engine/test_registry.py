"""The worker registry's rules, with plain calls and a clock passed in."""

from __future__ import annotations

from maggy.engine.registry import WorkerInfo, WorkerRegistry


def registry_with(*conns: int) -> WorkerRegistry:
    reg = WorkerRegistry()
    for conn in conns:
        assert reg.register(conn, WorkerInfo(partition=conn, host="h", pid=100 + conn), now=0.0) == []
    return reg


def test_a_run_is_held_by_its_connections_and_released_at_its_end():
    reg = registry_with(1, 2)
    reg.assign("t", (1, 2), now=0.0)  # a gang of two
    assert reg.holds(1, "t") and reg.holds(2, "t") and not reg.holds(3, "t")
    assert reg.trial_of(2) == "t" and reg.trial_of(3) is None
    assert reg.release("t", now=0.0).conns == (1, 2) and reg.release("t", now=0.0) is None
    assert not reg.holds(1, "t")


def test_a_dropped_connection_loses_only_the_run_it_held():
    reg = registry_with(1, 2, 3)
    reg.assign("a", (1,), now=0.0)
    reg.assign("b", (2, 3), now=0.0)
    assert reg.dropped(3) == "b" and 3 not in reg.workers
    assert list(reg.runs) == ["a"] and reg.dropped(2) is None  # b is gone already; 2 held nothing else


def test_stale_means_any_member_silent_past_the_timeout():
    reg = registry_with(1, 2)
    reg.assign("g", (1, 2), now=0.0)
    reg.touch(1, now=9.0)
    assert reg.stale(now=9.5, timeout=10.0) == []
    assert reg.stale(now=10.5, timeout=10.0) == [("g", 10.5)]  # 2 said nothing since it registered
    assert reg.runs == {} and reg.stale(now=30.0, timeout=10.0) == []  # released once


def test_a_run_past_the_trial_timeout_is_reported_once_and_the_mark_ends_with_the_run():
    reg = registry_with(1)
    reg.assign("t", (1,), now=0.0)
    assert reg.overdue(now=5.0, limit=10.0) == [] and reg.overdue(now=11.0, limit=None) == []
    assert reg.overdue(now=11.0, limit=10.0) == ["t"] and reg.timed_out("t")
    assert reg.overdue(now=12.0, limit=10.0) == []  # once
    assert reg.dropped(1) == "t"  # its worker is lost: the trial runs again elsewhere ...
    reg.register(2, WorkerInfo(partition=0, host="h", pid=2), now=12.0)
    reg.assign("t", (2,), now=12.0)
    assert not reg.timed_out("t")  # ... as a new run, with a clock of its own


def test_a_relaunched_task_takes_over_from_a_connection_that_is_gone():
    reg = registry_with(1)
    reg.assign("t", (1,), now=0.0)
    reg.workers.pop(1)  # its connection vanished without a drop being seen yet
    assert reg.register(5, WorkerInfo(partition=1, host="h", pid=7), now=1.0) == ["t"]
    assert "t" not in reg.runs
    assert [w.pid for w in reg.registered] == [101, 7]
