"""The plots render in a real browser with no network: headless Chromium, as a data scientist on an
offline cluster opens them (scripts/test installs Debian's chromium)."""

from __future__ import annotations

import subprocess

from maggy import plot
from tests.helpers import chromium
from tests.unit.ui.test_plot import make_result

#: Chromium as the machine's probe runs it offline: no background connections to Google's hosts.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000", "--dump-dom"]


def rendered_plots(path, tmp_path) -> int:
    """How many plotly figures the page drew (each draws its SVG layers: three per figure)."""
    out = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"file://{path}"],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.count('class="main-svg"') // 3


def test_the_report_and_each_page_render_offline_where_a_cdn_page_stays_blank(tmp_path):
    result = make_result()
    paths = plot.save(result, str(tmp_path / "plots"))
    assert rendered_plots(paths[0], tmp_path) == 5  # the report: every figure
    assert rendered_plots(paths[1], tmp_path) == 1  # one figure's page, with the plotly.min.js beside it
    cdn = tmp_path / "cdn.html"
    plot.optimization_history(result).write_html(str(cdn), include_plotlyjs="cdn")
    assert rendered_plots(cdn, tmp_path) == 0  # what the MLflow artifacts were before: blank without network
