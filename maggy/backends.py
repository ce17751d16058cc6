"""Backends start the workers (their home is :mod:`maggy.engine.backends`): ``LocalBackend``,
``SparkBackend``, or your own :class:`Backend`."""

from maggy.engine.backends import BACKENDS, Backend, LocalBackend, SparkBackend, make_backend

__all__ = ["BACKENDS", "Backend", "LocalBackend", "SparkBackend", "make_backend"]
