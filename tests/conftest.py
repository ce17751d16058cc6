"""Shared fixtures: one local[2] Spark for the whole session, and a helper to wait on conditions."""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

import pytest


def pytest_collection_modifyitems(items):
    """Mark what each test needs: ``spark`` where it runs a local Spark (``platform`` is marked in
    tests/platform/), so that ``-m "not spark and not platform"`` is the quick set without a JVM."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "spark" in item.fixturenames or params.get("backend") == "spark":
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="session")
def spark():
    """A real SparkSession on local[2], shared by every test that needs Spark."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("maggy-tests")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def wait_for(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.02, what: str = "") -> object:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
