"""The driver side: the event loop, the scheduler, the worker registry, backends and the RPC server."""
