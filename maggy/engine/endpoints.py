"""Where the driver's RPC server listens and which address the workers are given: the backend's
choice, or the user's ``driver_address`` / ``driver_bind`` where the executors cannot reach the
backend's (a Spark Connect client away from its cluster, a container, a NAT)."""

from __future__ import annotations

import queue
import socket
from typing import Callable

from maggy.engine.server import Inbound, RpcServer
from maggy.exceptions import InvalidParameterError
from maggy.rpc.tls import ServerIdentity
from maggy.validation import split_address


def listen_at(backend: Callable[[], tuple[str, str]], driver_address: str | None,
              driver_bind: str | None) -> tuple[tuple[str, int], tuple[str, int | None]]:
    """((host, port) to bind, (host, port) to advertise) from the backend's ``(bind, advertised)``
    hosts (asked only where the settings leave them open) and the user's settings. An advertised
    address is bound too unless ``driver_bind`` says otherwise; a port given in one setting serves
    both; an advertised port of None is the port the server got (0: any free port).

    >>> local = lambda: ("127.0.0.1", "127.0.0.1")
    >>> listen_at(local, None, None)
    (('127.0.0.1', 0), ('127.0.0.1', None))
    >>> listen_at(local, "gw.example.com:40000", "0.0.0.0")
    (('0.0.0.0', 40000), ('gw.example.com', 40000))
    >>> listen_at(local, "gw.example.com:40000", "0.0.0.0:5000")   # a forwarded port
    (('0.0.0.0', 5000), ('gw.example.com', 40000))
    """
    bind_port, advertised_port = 0, None
    if driver_address is not None:
        advertised, advertised_port = split_address("driver_address", driver_address)
        bind_host, bind_port = advertised, advertised_port or 0
    else:
        bind_host, advertised = backend()
    if driver_bind is not None:
        bind_host, given = split_address("driver_bind", driver_bind)
        bind_port = given if given is not None else bind_port
        advertised_port = advertised_port if advertised_port is not None else given or None
    return (bind_host, bind_port), (advertised, advertised_port)


def check_bind(bind: tuple[str, int]) -> None:
    """Fail, naming the settings, where this machine cannot listen at ``bind`` (an address of
    another machine, a port in use): called before the experiment has any side effect."""
    try:
        socket.create_server(bind).close()
    except OSError as exc:
        host, port = bind
        raise InvalidParameterError(
            f"The driver cannot listen on {host}:{port} ({exc.strerror or exc}): set driver_bind='0.0.0.0:{port}' or "
            "another address of this machine (with a free port, or port 0 for any), and driver_address= to the "
            "address at which the executors reach it.") from None


def listen(secret: bytes, inbox: "queue.Queue[Inbound]", backend: Callable[[], tuple[str, str]], driver_address: str | None,
           driver_bind: str | None, identity: ServerIdentity | None) -> tuple[RpcServer, tuple[str, int], dict[str, str]]:
    """Start the driver's RPC server where :func:`listen_at` says: the server, the (host, port) the
    workers are given, and the run's ``rpc`` stats (bound and advertised addresses, TLS)."""
    (bind, port), (advertised, advertised_port) = listen_at(backend, driver_address, driver_bind)
    server = RpcServer(secret, inbox, host=bind, port=port, tls=identity.context if identity else None).start()
    reached = (advertised, advertised_port or server.address[1])
    return server, reached, {"bind": f"{bind}:{server.address[1]}", "advertised": f"{reached[0]}:{reached[1]}",
                             "tls": "on" if identity else "off"}
