"""Integration tests run each experiment on both backends: Spark local[2] and LocalBackend."""

from __future__ import annotations

import pytest

from maggy.backends import LocalBackend, SparkBackend


@pytest.fixture(params=["spark", "local"])
def backend(request):
    """A fresh backend of each kind; the Spark one runs on the session's local[2] Spark."""
    if request.param == "spark":
        return SparkBackend(request.getfixturevalue("spark"))
    return LocalBackend()


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """A fresh sqlite tracking store; the environment variable is restored after the test (the
    in-process workers set it too), and artifacts go to ./mlruns of the test's own directory."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    # the in-process workers call mlflow.set_tracking_uri: put MLflow's own setting back afterwards
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    return uri
