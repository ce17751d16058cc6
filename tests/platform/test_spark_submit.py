"""The PyTorch example as a scheduled job: spark-submit on the standalone master, HDFS, MLflow."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import wait_for
from tests.helpers import chromium, job_result

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def submitted(platform):
    import pyspark
    spark_submit = pathlib.Path(pyspark.__file__).parent / "bin" / "spark-submit"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env.update(platform)  # as the README: set -a; . .platform/env; set +a
    out = subprocess.run([str(spark_submit), "--master", platform["SPARK_MASTER"], "--conf", "spark.executor.cores=1",
                          str(ROOT / "examples" / "tune_digits_torch.py"),
                          "--experiment-dir", platform["HDFS_URI"] + "/scheduled", "--trials", "4",
                          "--register", "digits-mlp"],
                         env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    return {**job_result(out.stdout, out.stderr, out.returncode), "stdout": out.stdout}


def test_the_trials_ran_on_the_standalone_cluster(submitted, platform, hdfs):
    assert submitted["spark_master"] == platform["SPARK_MASTER"]
    master = json.loads(urllib.request.urlopen(platform["SPARK_MASTER_UI"] + "/json/", timeout=10).read())
    apps = {a["id"]: a for a in master["activeapps"] + master["completedapps"]}
    assert submitted["spark_app_id"] in apps, sorted(apps)
    executors = []
    for worker in master["workers"]:
        info = json.loads(urllib.request.urlopen(worker["webuiaddress"] + "/json/", timeout=10).read())
        executors += [e for e in info["executors"] + info["finishedexecutors"] if e["appid"] == submitted["spark_app_id"]]
    spark_executors = {str(e["id"]) for e in executors}
    saved = json.loads(hdfs.read_text(hdfs.join(submitted["experiment_dir"], "result.json")))
    ran = [t["executor"] for t in saved["trials"]]
    workers = {w["executor"] for w in submitted["workers"]}
    # every trial ran in a worker on one of this application's executors, none in the driver; a subset, not
    # equal: the worker of an executor that came up after the four trials were handed out had none to run
    assert len(ran) == 4 and set(ran) <= workers <= spark_executors, (ran, workers, spark_executors)


def test_spark_submit_exits_0_with_results_on_hdfs(submitted, hdfs, platform):
    exp = submitted["experiment_dir"]
    assert exp.startswith(platform["HDFS_URI"] + "/scheduled/")  # as the user gave it, not maggy's webhdfs:// form
    assert {"journal.jsonl", "result.json"} <= set(hdfs.listdir(exp))
    saved = json.loads(hdfs.read_text(hdfs.join(exp, "result.json")))
    assert saved["outcome"] == "finished" and len(saved["trials"]) == 4
    assert {t["state"] for t in submitted["trials"]} == {"FINALIZED"}


def test_mlflow_has_the_runs_and_the_champion_loads_from_hdfs(submitted, platform, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = platform["MLFLOW_TRACKING_URI"]
    client = MlflowClient(uri)
    tracking = submitted["tracking"]
    assert tracking["lost"] == []
    children = client.search_runs([tracking["experiment_id"]],
                                  filter_string=f"tags.mlflow.parentRunId = '{tracking['parent_run_id']}'")
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    for child in children:
        assert sorted(m.step for m in client.get_metric_history(child.info.run_id, "metric")) == list(range(8))
    version = client.get_model_version_by_alias("digits-mlp", "champion")
    assert version.run_id == submitted["best_run_id"]
    assert submitted["model_uri"] == "models:/digits-mlp@champion"
    # the artifacts are on HDFS, and a fresh client in a fresh process loads the model from there
    model_id = getattr(version, "model_id", None) or version.source.rsplit("/", 1)[-1]
    location = client.get_logged_model(model_id).artifact_location
    assert location.startswith(f"webhdfs://{platform['WEBHDFS_URL'][7:]}/mlflow-artifacts"), location
    code = ("import mlflow, torch, sys; mlflow.set_tracking_uri(sys.argv[1]);"
            "m = mlflow.pytorch.load_model('models:/digits-mlp@champion');"
            "print('OUT', m(torch.zeros(2, 64)).shape[1])")
    out = subprocess.run([sys.executable, "-c", code, uri], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    assert "OUT 10" in out.stdout, out.stderr[-3000:]


def test_a_browser_shows_every_run_with_its_objective_and_the_plots_render_in_mlflow(submitted, platform):
    """What a data scientist sees: the link the summary prints opens MLflow's runs table, which
    lists the parent and every trial's run with the objective in one column, and the report
    attached to the parent draws its figures inside MLflow's artifact view (no network needed)."""
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    uri, tracking = platform["MLFLOW_TRACKING_URI"], submitted["tracking"]
    url = f"{uri}/#/experiments/{tracking['experiment_id']}/runs?workflowType=machine_learning"
    assert tracking["url"] == url and f"MLflow: {url}" in submitted["stdout"]
    parent = tracking["parent_run_id"]
    children = MlflowClient(uri).search_runs([tracking["experiment_id"]],
                                             filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    result_of = {t["trial_id"]: t["metric"] for t in submitted["trials"]}
    expected = {parent: submitted["best_metric"],
                **{c.info.run_id: result_of[c.data.tags["maggy.trial_id"]] for c in children}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)  # each wait below fails the test after a minute
            page.goto(url)
            page.locator(f'.ag-row[row-id="{parent}"]').first.wait_for()
            page.get_by_role("button", name="Columns", exact=True).click()
            # the objective's column (no metric is a column by default), picked in the column selector
            page.get_by_test_id("column-selector-tree").get_by_text("metric", exact=True).click()
            page.keyboard.press("Escape")
            # the trials nest under the parent: its name cell's plus unfolds them
            page.locator(f'.ag-row[row-id="{parent}"] [col-id="attributes.`Run Name`"] button').click()
            for run in expected:
                page.locator(f'.ag-row[row-id="{run}"]').first.wait_for()
            cells = page.locator(".ag-cell").evaluate_all(
                "cs => cs.map(c => [c.closest('.ag-row').getAttribute('row-id'), c.getAttribute('col-id'), c.innerText])")
            shown = {row: float(text) for row, col, text in cells if col == "metrics.`metric`" and row in expected}
            names = {row: text.splitlines()[-1] for row, col, text in cells if col == "attributes.`Run Name`"}
            assert shown == pytest.approx(expected)
            assert sorted(names[c.info.run_id] for c in children) == [f"digits-torch-{n}" for n in range(1, 5)]

            page.goto(f"{uri}/#/experiments/{tracking['experiment_id']}/runs/{parent}/artifacts/plots/report.html")
            report = page.frame_locator("iframe").first
            report.locator(".main-svg").first.wait_for()
            figures = report.locator(".plotly-graph-div")
            wait_for(lambda: figures.count() >= 4 and all(
                figures.nth(i).locator(".main-svg").count() for i in range(figures.count())),
                timeout=60, what="every figure of the report drawn")
            assert report.locator("g.trace, g.parcoords").count() >= figures.count()  # each draws its data
        finally:
            browser.close()
