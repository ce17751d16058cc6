"""Backends start the workers; the driver knows them only through :class:`Backend`."""

from __future__ import annotations

from maggy.engine.backends.base import Backend
from maggy.engine.backends.local import LocalBackend
from maggy.engine.backends.spark import SparkBackend
from maggy.validation import invalid

BACKENDS = {"spark": SparkBackend, "local": LocalBackend}


def make_backend(backend: str | Backend) -> Backend:
    """The backend named ``backend`` ("spark" or "local"), or the instance given."""
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        raise invalid("backend", backend, "'spark', 'local' or a maggy.engine.backends.Backend")
    return BACKENDS[backend.lower()]()


__all__ = ["BACKENDS", "Backend", "LocalBackend", "SparkBackend", "make_backend"]
