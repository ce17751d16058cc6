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
#: ``scripts/platform up``, started as soon as the session knows it runs a platform test
_starting: list[subprocess.Popen] = []


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/platform/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.platform)


def _up() -> subprocess.Popen:
    return subprocess.Popen([*PLATFORM, "up"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pytest_collection_finish(session):
    """The platform's minute of start-up overlaps the tests that run before the platform's."""
    if not session.config.option.collectonly and any(i.get_closest_marker("platform") for i in session.items):
        _starting.append(_up())


def pytest_sessionfinish(session):
    """A platform started for tests that never ran (the session was cut short) is stopped too."""
    if _starting:
        _starting.pop().communicate(timeout=600)
        subprocess.run([*PLATFORM, "down"], timeout=120)


@pytest.fixture(scope="session")
def platform():
    """KEY=VALUE endpoints printed by ``scripts/platform up``."""
    proc = _starting.pop() if _starting else _up()
    try:
        stdout, stderr = proc.communicate(timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"scripts/platform up failed:\n{stdout}\n{stderr}")
        env = dict(re.findall(r"^([A-Z0-9_]+)=(\S+)$", stdout, flags=re.MULTILINE))
        assert {"HDFS_URI", "WEBHDFS_URL", "MLFLOW_TRACKING_URI", "SPARK_MASTER", "YARN_RM"} <= set(env), stdout
        yield env
    finally:
        subprocess.run([*PLATFORM, "down"], timeout=120)


@pytest.fixture
def hdfs(platform):
    from maggy.store.storage import HdfsStorage
    return HdfsStorage(platform["WEBHDFS_URL"].split("://", 1)[1])
