"""What crosses the network between the workers and the driver, recorded by a TCP proxy between
them: with TLS no hyperparameter name nor log line travels in clear; without it, both do."""

from __future__ import annotations

import dataclasses
import socket
import threading

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import LocalBackend
from maggy.rpc.protocol import VERSION

#: Strings that appear nowhere on the wire unless the experiment's messages travel in clear.
PARAM = "zebra_momentum_q7x"
CHOICE = "quokka_adamw_v9"
LINE = "okapi-marker-line-31337"
#: How the driver's challenge starts, in clear.
HELLO = b"MGC" + bytes([VERSION])


class RecordingProxy:
    """A TCP relay on 127.0.0.1 that keeps every byte it forwards, both ways."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream: tuple[str, int] | None = None
        self.recorded = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return  # closed
            assert self.upstream is not None, "a worker connected before the driver listened"
            up = socket.create_connection(self.upstream, timeout=30)
            with self._lock:
                self.connections += 1
                self._socks += [down, up]
            for src, dst in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    self.recorded += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            for s in self._socks:
                s.close()


class ProxiedBackend(LocalBackend):
    """Local workers told to reach the driver through ``proxy``."""

    def __init__(self, proxy: RecordingProxy) -> None:
        super().__init__()
        self.proxy = proxy

    def start(self, spec, num_workers: int, job_name: str) -> None:
        self.proxy.upstream = (spec.host, spec.port)
        super().start(dataclasses.replace(spec, port=self.proxy.port), num_workers, job_name)


def train(zebra_momentum_q7x, kind, reporter):
    reporter.log("okapi-marker-line-31337")
    return zebra_momentum_q7x


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_the_wire_shows_no_hyperparameter_or_log_line_with_tls(tmp_path, tls):
    proxy = RecordingProxy()
    sp = Searchspace(**{PARAM: ("DOUBLE", [0.0, 1.0]), "kind": ("CATEGORICAL", [CHOICE])})
    assert train.__code__.co_varnames[0] == PARAM and LINE in train.__code__.co_consts  # the markers are these
    cfg = HyperparameterOptConfig(searchspace=sp, num_trials=3, num_workers=1, es_policy="none", hb_interval=0.05,
                                  experiment_dir=str(tmp_path), tls=tls, worker_timeout=60)
    try:
        result = experiment.lagom(train, cfg, backend=ProxiedBackend(proxy), verbose=False)
    finally:
        proxy.close()
    assert list(result.trials["state"]) == ["FINALIZED"] * 3 and result.stats["rpc"]["tls"] == ("on" if tls else "off")
    logs = [p.read_text() for p in tmp_path.rglob("trials/*.log")]
    assert len(logs) == 3 and all(LINE in text for text in logs)  # the line did travel to the driver
    wire = bytes(proxy.recorded)
    assert proxy.connections >= 1 and len(wire) > 1000  # the experiment's traffic went through the proxy
    seen = {m for m in (PARAM, CHOICE, LINE) if m.encode() in wire}
    if tls:
        assert seen == set(), f"{sorted(seen)} crossed the network in clear"
        assert HELLO not in wire and b'"worker"' not in wire  # neither the challenge nor any frame's body
    else:  # the same recording sees them in clear: the assertion above can fail
        assert seen == {PARAM, CHOICE, LINE}


def test_an_experiment_runs_over_tls_on_each_backend(backend, tmp_path):
    """The pin travels in the task closure (Spark) or on stdin (local), and the workers use it."""
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=4, num_workers=2,
                                  es_policy="none", hb_interval=0.05, experiment_dir=str(tmp_path), tls=True)
    result = experiment.lagom(lambda x: x, cfg, backend=backend, verbose=False)
    assert result.stats["rpc"]["tls"] == "on" and result.stats["bad_frames"] == {}
    assert list(result.trials["state"]) == ["FINALIZED"] * 4
