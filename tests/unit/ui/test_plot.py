"""The pictures of an experiment: figure objects with the traces each should have."""

from __future__ import annotations

import pytest

from maggy import plot
from maggy.result import Result
from maggy.trial import Trial, TrialState


def make_result(direction="max"):
    trials = []
    for i in range(12):
        lr, opt = (i % 4) / 4, ["sgd", "adam"][i % 2]
        history = [(s, lr * (s + 1)) for s in range(9 if i % 3 else 3)]
        if i % 3 == 0:
            t = Trial(f"t{i}", {"lr": lr, "opt": opt}, state=TrialState.EARLY_STOPPED, start=i, end=i + 1,
                      history=history, metric=history[-1][1])
        else:
            t = Trial(f"t{i}", {"lr": lr, "opt": opt}, state=TrialState.FINALIZED, start=i, end=i + 1, budget=9,
                      history=history, metric=history[-1][1], rungs=[(3, lr * 3), (9, lr * 9)], rung_steps=[3, 9])
        trials.append(t)
    return Result.of("pics", direction, trials, ["lr", "opt"], "/tmp/pics", {})


def test_history_has_each_trial_and_the_best_so_far():
    fig = plot.optimization_history(make_result())
    points, best = fig.data
    assert len(points.y) == 12 and list(best.y) == sorted(best.y)  # the best so far only rises when maximising
    assert max(best.y) == max(points.y)
    low = plot.optimization_history(make_result("min")).data[1]
    assert list(low.y) == sorted(low.y, reverse=True)


def test_parallel_coordinates_has_each_parameter_and_the_metric():
    (trace,) = plot.parallel_coordinates(make_result()).data
    assert [d.label for d in trace.dimensions] == ["lr", "opt", "metric"]
    assert list(trace.dimensions[1].ticktext) == ["adam", "sgd"]


def test_learning_curves_mark_stopped_and_promoted_trials():
    fig = plot.learning_curves(make_result())
    curves = [t for t in fig.data if t.mode == "lines"]
    assert len(curves) == 12
    assert sum(t.line.dash == "dash" for t in curves) == 4  # the early-stopped ones
    promoted = [t for t in fig.data if t.mode == "markers"]
    assert len(promoted) == 8 and all(list(t.x) == [2] for t in promoted)  # each left rung 3 after step 2


def test_rung_occupancy_and_parameter_importance():
    (bars,) = plot.rungs(make_result()).data
    assert list(bars.x) == ["3", "9"] and list(bars.y) == [8, 8]
    (imp,) = plot.importance(make_result()).data
    assert list(imp.y)[-1] == "lr"  # the metric depends on lr alone: it comes out on top
    assert sum(imp.x) == pytest.approx(1.0)


def test_save_writes_every_picture_as_html(tmp_path):
    paths = plot.save(make_result(), str(tmp_path / "out"))
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["history.html", "importance.html", "learning_curves.html",
                                                         "parallel_coordinates.html", "rungs.html"]
    assert all("plotly" in open(p).read(2000).lower() for p in paths)


def test_timeline_has_a_row_per_worker_and_a_bar_per_run_coloured_by_its_end():
    trials = []
    runs = {"a": [(0.0, 2.0, 0, "PAUSED"), (5.0, 9.0, 1, "FINALIZED")], "b": [(0.5, 1.5, 1, "EARLY_STOPPED")],
            "c": [(3.0, 4.0, 0, "ERROR")]}
    for tid, rs in runs.items():
        trials.append(Trial(tid, {"lr": 0.1}, state=TrialState(rs[-1][3]), metric=None if tid == "c" else 1.0,
                            start=rs[-1][0], end=rs[-1][1], runs=rs))
    result = Result.of("tl", "max", trials, ["lr"], "/tmp/tl", {"utilization": 0.5})
    fig = plot.timeline(result)
    by_state = {trace.name: trace for trace in fig.data}
    assert set(by_state) == {"finalized", "paused", "early stopped", "error"}
    assert by_state["paused"].marker.color != by_state["finalized"].marker.color
    bars = sorted((trace.y[i], trace.x[i], trace.name) for trace in fig.data for i in range(len(trace.y)))
    assert bars == [("worker 0", 1000.0, "error"), ("worker 0", 2000.0, "paused"),
                    ("worker 1", 1000.0, "early stopped"), ("worker 1", 4000.0, "finalized")]
    assert list(fig.layout.yaxis.categoryarray) == ["worker 0", "worker 1"] and "50% busy" in fig.layout.title.text
