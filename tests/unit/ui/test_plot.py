"""The pictures of an experiment: figure objects with the traces each should have."""

from __future__ import annotations

import os

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
                      history=history, metric=history[-1][1], number=i + 1)
        else:
            t = Trial(f"t{i}", {"lr": lr, "opt": opt}, state=TrialState.FINALIZED, start=i, end=i + 1, budget=9,
                      history=history, metric=history[-1][1], rungs=[(3, lr * 3), (9, lr * 9)], rung_steps=[3, 9],
                      number=i + 1)
        trials.append(t)
    return Result.of("pics", direction, trials, ["lr", "opt"], "/tmp/pics", {})


def test_history_has_each_trial_and_the_best_so_far():
    fig = plot.optimization_history(make_result())
    points, best, star = fig.data
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
    assert {t.line.color for t in curves if t.line.dash == "dash"} == {plot.STATE_COLORS["EARLY_STOPPED"]}
    assert {t.line.color for t in curves if t.line.dash != "dash"} == {plot.STATE_COLORS["FINALIZED"]}
    assert curves[1].name == "pics-2 (lr=0.25, opt=adam)"  # its number and its parameters
    promoted = [t for t in fig.data if t.mode == "markers"]
    assert len(promoted) == 8 and all(list(t.x) == [2] for t in promoted)  # each left rung 3 after step 2


def test_rung_occupancy_and_parameter_importance():
    (bars,) = plot.rungs(make_result()).data
    assert list(bars.x) == ["3", "9"] and list(bars.y) == [8, 8]
    (imp,) = plot.importance(make_result()).data
    assert list(imp.y)[-1] == "lr"  # the metric depends on lr alone: it comes out on top
    assert sum(imp.x) == pytest.approx(1.0)


def test_save_writes_a_self_contained_report_and_pages_that_share_one_local_plotly(tmp_path):
    paths = plot.save(make_result(), str(tmp_path / "out"))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["report.html", "history.html", "parallel_coordinates.html",
                                                    "learning_curves.html", "rungs.html", "importance.html"]
    assert sorted(os.listdir(tmp_path / "out")) == sorted([p.rsplit("/", 1)[1] for p in paths] + ["plotly.min.js"])
    page = open(paths[0], encoding="utf-8").read()
    assert 'src="https://cdn.plot.ly' not in page and page.count('class="plotly-graph-div"') == 5
    assert page.count("plotly.js v") == 1  # plotly's script once, inline
    for path in paths[1:]:
        text = open(path, encoding="utf-8").read()
        assert 'src="plotly.min.js"' in text and 'src="https://cdn.plot.ly' not in text


def test_log_scale_parameters_get_log_axes_the_best_trial_is_marked_by_number_and_axes_name_the_key():
    from maggy.search.objectives import Objectives

    trials = [Trial(f"t{i}", {"lr": 10.0 ** -(i % 4 + 1), "opt": "sgd"}, state=TrialState.FINALIZED, start=i,
                    end=i + 1, metric=float(i % 4), number=i + 1, history=((0, 0.0), (1, float(i % 4))))
              for i in range(8)]
    result = Result.of("logs", Objectives.of("accuracy", "max"), trials, ["lr", "opt"], "/tmp/logs", {},
                       log_scale=["lr"])
    lr = next(d for d in plot.parallel_coordinates(result).data[0].dimensions if d.label.startswith("lr"))
    assert lr.label == "lr (log)" and sorted(set(lr.values)) == [-4.0, -3.0, -2.0, -1.0]
    assert list(lr.ticktext) == ["1e-4", "1e-3", "1e-2", "1e-1"]
    colorbar = plot.parallel_coordinates(result).data[0].line.colorbar
    assert colorbar.title.text == "accuracy (max)"  # the user's optimization_key, as in MLflow
    assert plot.parallel_coordinates(result).data[0].dimensions[-1].label == "accuracy"
    assert plot.learning_curves(result).layout.yaxis.title.text == "accuracy"
    history = plot.optimization_history(result)
    assert history.layout.yaxis.title.text == "accuracy (maximised)"
    (best,) = [t for t in history.data if t.name == "best"]
    numbers = {t.trial_id: t.number for t in result.views}
    assert list(best.x) == [numbers[result.best_trial_id]] and best.text[0].endswith(f"-{numbers[result.best_trial_id]}")


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


#: Each trial's (accuracy, milliseconds, megabytes), in the order they end: accuracy is maximised, the
#: others minimised. On accuracy and milliseconds alone the front is t3, t0, t1, t4 (t2 and t5 are beaten).
MULTI = [(0.9, 30.0, 4.0), (0.8, 10.0, 9.0), (0.7, 20.0, 1.0), (0.95, 40.0, 8.0), (0.6, 5.0, 7.0), (0.85, 35.0, 6.0)]


def make_multi_result(objectives=2):
    from maggy.search.objectives import Objectives

    keys, directions = ["acc", "ms", "mb"][:objectives], ["max", "min", "min"][:objectives]
    trials = [Trial(f"t{i}", {"x": i / 10, "opt": ["sgd", "adam"][i % 2]}, state=TrialState.FINALIZED, metric=v[0],
                    values=v[:objectives], start=i, end=i + 1, number=i + 1, history=[(0, v[0] / 2), (1, v[0])])
              for i, v in enumerate(MULTI)]
    trials.append(Trial("t6", {"x": 0.6, "opt": "sgd"}, state=TrialState.ERROR, start=6, end=7, number=7,
                        error={"type": "ValueError", "message": "boom"}))
    return Result.of("mo", Objectives.of(keys, directions), trials, ["x", "opt"], "/tmp/mo", {})


def test_pareto_front_of_two_objectives_joins_the_front_by_a_step_line_and_greys_the_rest():
    result = make_multi_result()
    assert result.front_ids == ("t3", "t0", "t1", "t4")
    fig = plot.pareto_front(result)
    others, front = fig.data
    assert (others.name, front.name) == ("other trials", "Pareto front")
    assert list(front.x) == [0.95, 0.9, 0.8, 0.6] and list(front.y) == [40.0, 30.0, 10.0, 5.0]
    assert front.mode == "lines+markers" and front.line.shape == "hv"  # a staircase: along x, then y
    assert list(others.x) == [0.7, 0.85] and list(others.y) == [20.0, 35.0] and others.mode == "markers"
    assert others.marker.color == "#b0b0b0" and front.marker.color != others.marker.color
    assert list(front.text) == ["mo-4<br>x=0.3, opt=adam", "mo-1<br>x=0, opt=sgd", "mo-2<br>x=0.1, opt=adam",
                                "mo-5<br>x=0.4, opt=sgd"]
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("acc (max)", "ms (min)")
    swapped = plot.pareto_front(result, keys=["ms", "acc"]).data[1]  # the front best first by the x axis
    assert list(swapped.x) == [5.0, 10.0, 30.0, 40.0] and list(swapped.y) == [0.6, 0.8, 0.9, 0.95]


def test_pareto_front_of_three_objectives_is_a_3d_scatter_and_keys_pick_two():
    result = make_multi_result(3)
    assert result.front_ids == ("t3", "t0", "t1", "t2", "t4")  # t2 is best on megabytes
    fig = plot.pareto_front(result)
    assert [(t.type, t.name) for t in fig.data] == [("scatter3d", "other trials"), ("scatter3d", "Pareto front")]
    others, front = fig.data
    assert list(others.x) == [0.85] and list(zip(front.x, front.y, front.z)) == [
        (0.95, 40.0, 8.0), (0.9, 30.0, 4.0), (0.8, 10.0, 9.0), (0.7, 20.0, 1.0), (0.6, 5.0, 7.0)]
    scene = fig.layout.scene
    assert [scene.xaxis.title.text, scene.yaxis.title.text, scene.zaxis.title.text] == ["acc (max)", "ms (min)",
                                                                                        "mb (min)"]
    flat = plot.pareto_front(result, keys=["acc", "ms"])
    assert [t.type for t in flat.data] == ["scatter", "scatter"] and list(flat.data[1].x) == [0.95, 0.9, 0.8, 0.7, 0.6]
    assert flat.data[1].mode == "markers"  # the front of three objectives is no staircase on two of them
    assert flat.layout.title.text == "Pareto front: mo (acc, ms of 3 objectives)"


def test_pareto_front_says_what_is_wrong_with_one_objective_or_bad_keys():
    with pytest.raises(ValueError, match="^pareto_front needs several objectives; this result optimised one: use "
                                         "optimization_history$"):
        plot.pareto_front(make_result())
    result = make_multi_result(3)
    with pytest.raises(ValueError, match=r"\['loss'\] are not objectives"):
        plot.pareto_front(result, keys=["acc", "loss"])
    for keys in (["acc"], ["acc", "acc"]):
        with pytest.raises(ValueError, match=r"2 or 3 distinct objectives of acc \(max\), ms \(min\), mb \(min\)"):
            plot.pareto_front(result, keys=keys)


def test_the_other_plots_draw_the_first_objective_of_several():
    result = make_multi_result()
    history = plot.optimization_history(result)  # no best trial to mark: there is none
    assert [t.name for t in history.data] == ["trial", "best so far"]
    assert list(history.data[0].y) == [v[0] for v in MULTI] and list(history.data[1].y) == [0.9, 0.9, 0.9, 0.95, 0.95,
                                                                                           0.95]
    assert history.layout.yaxis.title.text == "acc (maximised)"
    (lines,) = plot.parallel_coordinates(result).data
    assert [d.label for d in lines.dimensions] == ["x", "opt", "acc", "ms"]
    assert list(lines.line.color) == [v[0] for v in MULTI] and lines.line.colorbar.title.text == "acc (max)"
    assert plot.learning_curves(result).layout.yaxis.title.text == "acc"
    (imp,) = plot.importance(result).data  # of the first objective
    assert sorted(imp.y) == ["opt", "x"] and sum(imp.x) == pytest.approx(1.0)


def test_the_report_of_several_objectives_opens_with_the_pareto_front(tmp_path):
    result = make_multi_result()
    assert list(plot.figures(result)) == ["pareto_front", "parallel_coordinates", "learning_curves"]
    paths = plot.save(result, str(tmp_path / "out"))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["report.html", "pareto_front.html", "parallel_coordinates.html",
                                                    "learning_curves.html"]
    page = open(paths[0], encoding="utf-8").read()
    assert page.count('class="plotly-graph-div"') == 3 and "Pareto front (acc (max), ms (min)): 4 trials" in page
    assert page.index('id="maggy-pareto_front"') < page.index('id="maggy-parallel_coordinates"')


def test_the_ablation_plot_ranks_removals_by_harm_coloured_by_kind(tmp_path):
    trials = [Trial(n, {"ablation": n}, state=TrialState.FINALIZED, metric=m, start=i, end=i + 1, number=i + 1)
              for i, (n, m) in enumerate([("base", 0.9), ("feature:age", 0.6), ("component:head", 0.85),
                                          ("group:ab", 0.5), ("feature:id", 0.9)])]
    result = Result.of("abl", "max", trials, ["ablation"], "/tmp/abl", {})
    fig = plot.ablation(result)
    assert list(fig.layout.yaxis.categoryarray) == ["feature: id", "component: head", "feature: age", "group: ab"]
    by_kind = {t.name: dict(zip(t.y, t.x)) for t in fig.data}
    assert by_kind["group"] == {"group: ab": pytest.approx(-0.4)} and by_kind["component"]["component: head"] < 0
    assert list(plot.figures(result)) == ["ablation"]  # no search pictures for a study (nor history, runs)
