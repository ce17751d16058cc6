"""``python -m maggy show``: an experiment's summary and plots from a shell."""

from __future__ import annotations

import os
import subprocess
import sys

from maggy import HyperparameterOptConfig, Searchspace, experiment
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
