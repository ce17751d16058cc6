"""The real local platform (HDFS, YARN, MLflow, Spark standalone), started once for these tests and stopped after."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLATFORM = [sys.executable, str(ROOT / "scripts" / "local_platform.py")]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/platform/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.platform)


@pytest.fixture(scope="session")
def platform():
    """KEY=VALUE endpoints printed by ``scripts/platform up``."""
    out = subprocess.run([*PLATFORM, "up"], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        pytest.fail(f"scripts/platform up failed:\n{out.stdout}\n{out.stderr}")
    env = dict(re.findall(r"^([A-Z0-9_]+)=(\S+)$", out.stdout, flags=re.MULTILINE))
    assert {"HDFS_URI", "WEBHDFS_URL", "MLFLOW_TRACKING_URI", "SPARK_MASTER", "YARN_RM"} <= set(env), out.stdout
    yield env
    subprocess.run([*PLATFORM, "down"], timeout=120)


@pytest.fixture
def hdfs(platform):
    from maggy.store.hdfs import HdfsStorage
    return HdfsStorage(platform["WEBHDFS_URL"].split("://", 1)[1])
