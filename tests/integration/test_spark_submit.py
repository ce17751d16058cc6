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


def submit(args: list[str], tmp_path: pathlib.Path, **env: str) -> dict:
    import pyspark
    spark_submit = pathlib.Path(pyspark.__file__).parent / "bin" / "spark-submit"
    out = subprocess.run([str(spark_submit), *args, str(HERE / "submit_probe.py"), str(tmp_path / "exp")],
                         env={**os.environ, "PYSPARK_PYTHON": sys.executable, **env},
                         capture_output=True, text=True, timeout=240)
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
