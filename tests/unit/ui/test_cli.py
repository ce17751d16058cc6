"""``python -m maggy show``: an experiment's summary and plots from a shell."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment, load_result
from tests.helpers import ThreadBackend


def test_show_prints_the_summary_and_writes_the_plots(tmp_path):
    def train(x, reporter):
        for step in range(3):
            reporter.broadcast(x * step, step)
        return x

    result = experiment.lagom(train, HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])),
                                                             num_trials=4, es_policy="none", name="shown",
                                                             experiment_dir=str(tmp_path / "exp")),
                              backend=ThreadBackend(), verbose=False)
    out = subprocess.run([sys.executable, "-m", "maggy", "show", str(tmp_path / "exp" / "shown"), "--plots",
                          str(tmp_path / "pics")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Experiment 'shown': 4 trials" in out.stdout and result.best_trial_id in out.stdout
    assert "Outcome: finished" in out.stdout and "Best 4 of 4 trials" in out.stdout
    assert sorted(os.listdir(tmp_path / "pics")) == ["history.html", "importance.html", "learning_curves.html",
                                                    "parallel_coordinates.html", "plotly.min.js", "report.html",
                                                    "timeline.html"]
    assert out.stderr == ""
    quiet = subprocess.run([sys.executable, "-m", "maggy", "show", str(tmp_path / "exp" / "shown"), "--no-plots"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert quiet.returncode == 0 and "Best 4 of 4 trials" in quiet.stdout and "Plots:" not in quiet.stdout
    assert not (tmp_path / "shown-plots").exists()  # the default plots directory was not made
    missing = subprocess.run([sys.executable, "-m", "maggy", "show", str(tmp_path / "nothing")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "No maggy journal" in missing.stderr


def test_show_lists_the_trials_of_several_objectives_by_pareto_front_then_the_first_objective(tmp_path, capsys):
    from maggy.ui.cli import main

    #: x -> (accuracy, milliseconds); x=0.7 fails. Fronts: 0.2, 0.4, 0.1 | 0.3, 0.5 | 0.6.
    values = {0.1: (0.5, 5.0), 0.2: (0.9, 30.0), 0.3: (0.85, 40.0), 0.4: (0.7, 10.0), 0.5: (0.6, 20.0),
              0.6: (0.55, 50.0)}

    def train(x):
        if x not in values:
            raise ValueError("boom")
        return {"acc": values[x][0], "ms": values[x][1]}

    config = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=7, name="mo",
                                     optimization_key=["acc", "ms"], direction=["max", "min"],
                                     points_to_evaluate=[{"x": x} for x in [*values, 0.7]],
                                     experiment_dir=str(tmp_path / "exp"))
    experiment.lagom(train, config, backend=ThreadBackend(), verbose=False)
    capsys.readouterr()
    assert main(["show", str(tmp_path / "exp" / "mo"), "--plots", str(tmp_path / "pics")]) == 0
    out = capsys.readouterr().out
    table = out.split("First 7 of 7 trials by Pareto front (0: on the front):\n", 1)[1].split("\n\nPlots:", 1)[0]
    header, *rows = table.splitlines()
    assert header.split() == ["trial_id", "state", "x", "acc", "ms", "front", "steps", "duration"]
    assert [tuple(row.split()[2:6]) for row in rows] == [
        ("0.2", "0.90", "30.0", "0"), ("0.4", "0.70", "10.0", "0"), ("0.1", "0.50", "5.0", "0"),
        ("0.3", "0.85", "40.0", "1"), ("0.5", "0.60", "20.0", "1"), ("0.6", "0.55", "50.0", "2"),
        ("0.7", "NaN", "NaN", "<NA>")]
    assert rows[-1].split()[1] == "ERROR" and "Pareto front (acc (max), ms (min)): 3 trials" in out
    assert sorted(os.listdir(tmp_path / "pics")) == ["parallel_coordinates.html", "pareto_front.html", "plotly.min.js",
                                                    "report.html", "timeline.html"]


def test_show_on_a_root_lists_its_experiments(tmp_path, capsys):
    from maggy.ui.cli import main

    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]))
    for name, trials in (("first", 2), ("second", 3)):
        experiment.lagom(lambda x: x, sp, num_trials=trials, name=name, experiment_dir=str(tmp_path / "root"),
                         es_policy="none", backend=ThreadBackend(), verbose=False)
    (tmp_path / "root" / "notes.txt").write_text("not an experiment")
    best = {n: load_result(str(tmp_path / "root" / n)).best_metric for n in ("first", "second")}
    assert main(["show", str(tmp_path / "root")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "run", "started", "trials", "outcome", "best"]
    for line, name, trials in zip(lines[1:3], ("first", "second"), (2, 3)):
        cells = line.split()
        assert cells[0] == name and cells[4] == f"{trials}/{trials}" and cells[5] == "finished"
        assert float(cells[6]) == pytest.approx(best[name], rel=1e-5)
    assert "2 experiments; python -m maggy show" in lines[-1]
