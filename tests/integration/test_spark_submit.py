"""Under spark-submit, maggy runs on the master Spark was given, never a local[*] of its own."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from tests.helpers import job_result

HERE = pathlib.Path(__file__).resolve().parent

pytestmark = pytest.mark.spark


def spark_submit(args: list[str], **env: str) -> subprocess.CompletedProcess:
    import pyspark
    spark_submit = pathlib.Path(pyspark.__file__).parent / "bin" / "spark-submit"
    return subprocess.run([str(spark_submit), *args], env={**os.environ, "PYSPARK_PYTHON": sys.executable, **env},
                          capture_output=True, text=True, timeout=240)


def submit(args: list[str], tmp_path: pathlib.Path, **env: str) -> dict:
    out = spark_submit([*args, str(HERE / "submit_probe.py"), str(tmp_path / "exp")], **env)
    return job_result(out.stdout, out.stderr, out.returncode)


def test_the_master_given_to_spark_submit(tmp_path):
    got = submit(["--master", "local[1]"], tmp_path)
    assert got["spark_master"] == "local[1]"
    assert got["states"] == ["FINALIZED", "FINALIZED"]


def test_the_master_of_spark_defaults_conf(tmp_path):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "spark-defaults.conf").write_text("spark.master  local[1]\n")
    got = submit([], tmp_path, SPARK_CONF_DIR=str(conf_dir))
    assert got["spark_master"] == "local[1]"


def test_a_failed_scheduled_job_fails_again_when_the_scheduler_retries_it(tmp_path, monkeypatch):
    """The README's spark-submit job with a train_fn that always fails, run twice: both runs exit
    non-zero, and the retry raises the stored error without running a trial."""
    calls = tmp_path / "calls"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # no tracking server: nothing tracked
    args = ["--master", "local[2]", str(HERE / "failing_digits_job.py"), "--experiment-dir", str(tmp_path / "exp"),
            "--trials", "4"]
    first = spark_submit(args, MAGGY_TEST_CALLS=str(calls))
    said = first.stdout + first.stderr  # spark-submit's PythonRunner sends Python's stderr to its stdout
    assert first.returncode != 0 and "TrialsFailedError" in said, said[-3000:]
    assert "FileNotFoundError: the training data is not there yet" in said
    ran = calls.read_text().splitlines()
    assert 3 <= len(ran) <= 4  # fail_fast=3 stopped it
    retry = spark_submit(args, MAGGY_TEST_CALLS=str(calls))
    said = retry.stdout + retry.stderr
    assert retry.returncode != 0 and "This is the stored outcome of experiment 'digits-torch'" in said, said[-3000:]
    assert "FileNotFoundError: the training data is not there yet" in said
    assert calls.read_text().splitlines() == ran  # nothing ran again
