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
