"""Every notebook under notebooks/ runs top to bottom in a fresh kernel."""

from __future__ import annotations

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.spark  # the notebooks run on Spark local mode

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert (tmp_path / "maggy_experiments").is_dir()
    live = [o for o in outputs if o.output_type == "display_data" and " running, " in o.data.get("text/plain", "")
            and "<pre>" in o.data.get("text/html", "")]
    assert live, "the live progress display did not appear"
    plots = [c for c in nb.cells if "plot" in c.metadata.get("tags", [])]
    for cell in plots:  # each plot cell shows a plotly figure
        assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in cell.outputs), cell.source
    if path.name == "quickstart.ipynb":
        assert len(plots) >= 4
        noise = [o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stderr"]
        # quiet: no Spark start-up chatter, and one warning, where the finished experiment is run again
        assert len(noise) == 1 and "MaggyWarning: Experiment 'quickstart' already finished" in noise[0], noise


def test_there_are_notebooks():
    assert NOTEBOOKS
