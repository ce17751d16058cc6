"""What TLS on the control channel costs: hand-off latency and trial turnover, TLS on against off.

    .venv/bin/python bench/tls.py [--tls on,off] [--trials 2000] [--repeat 5] [--requests 5000]

Table 1: ``--repeat`` rounds; each round runs one ``lagom`` of ``--trials`` trials of
``lambda x: x`` on two ``LocalBackend`` workers (random search, no early stopping, no MLflow) for
each setting of ``tls``, in a child process each, the settings' order alternating between rounds
so that a drift of the machine's load falls on both. Per setting, the median over the rounds of:
the hand-off p50 (``result.stats["handoff_p50_ms"]``: from a worker sending FINAL to holding its
next trial), the turnover (trials per second, from the first trial's start to the last one's
end) and the CPU time per trial (user and system, of the driver's process and its workers'
together: what a loaded machine's turnover comes down to). Each ratio is the median over the
rounds of that round's ratio to the last setting, measured beside it: on a shared machine whose
load drifts, that pairs like with like.

Table 2: the RPC layer alone, over loopback: one client's back-to-back GET requests to a server
whose stand-in driver answers OK (request p50), and the cost of connecting (TLS handshake,
challenge and response), ``--requests`` of each, alternating.

Everything binds to 127.0.0.1; every process stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = b"b" * 32

_RUN = textwrap.dedent("""
    import json, sys
    from maggy import HyperparameterOptConfig, Searchspace, experiment
    from maggy.backends import LocalBackend
    trials, tls, directory = int(sys.argv[1]), sys.argv[2] == "on", sys.argv[3]
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=trials,
                                  num_workers=2, es_policy="none", experiment_dir=directory, hb_interval=1.0, tls=tls)
    result = experiment.lagom(lambda x: x, cfg, backend=LocalBackend(), verbose=False)
    starts = [t.timestamp() for t in result.trials["start"]]
    ends = [t.timestamp() for t in result.trials["end"]]
    print(json.dumps({"done": len(ends), "handoff_p50_ms": result.stats["handoff_p50_ms"],
                      "rate": len(ends) / (max(ends) - min(starts)), "tls": result.stats["rpc"]["tls"]}))
""")


def experiment(trials: int, tls: str) -> dict:
    """One lagom in a child process; its hand-off p50, turnover and CPU milliseconds per trial."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", _RUN, str(trials), tls, tmp], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=1800, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child, and its workers that it waited for
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["tls"] == tls and got["done"] == trials, got
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {**got, "cpu_ms": 1000 * cpu / trials}


def _server(tls: str):
    """An RpcServer (TLS or plain) with a stand-in driver that answers OK; (server, fingerprint, stop)."""
    from maggy.engine.server import RpcServer
    from maggy.rpc.messages import Ok
    from maggy.rpc.tls import server_identity

    identity = server_identity() if tls == "on" else None
    inbox: queue.Queue = queue.Queue()
    server = RpcServer(SECRET, inbox, tls=identity.context if identity else None).start()
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                msg = inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if msg.message is not None:
                server.reply(msg.conn, Ok())

    threading.Thread(target=answer, daemon=True).start()
    return server, identity.fingerprint if identity else None, stop


def rpc_layer(settings: list[str], n: int) -> dict[str, dict[str, float]]:
    """Per setting: the p50 of a GET round trip and of a connection's set-up, in milliseconds."""
    from maggy.rpc import RpcClient
    from maggy.rpc.messages import Get

    servers = {tls: _server(tls) for tls in settings}
    clients = {tls: RpcClient(*srv.address, SECRET, tls_fingerprint=fp, timeout=10) for tls, (srv, fp, _) in servers.items()}
    lat: dict[str, list[float]] = {tls: [] for tls in settings}
    conn: dict[str, list[float]] = {tls: [] for tls in settings}
    try:
        for i in range(n):
            for tls in settings if i % 2 == 0 else settings[::-1]:
                t = time.perf_counter()
                clients[tls].request(Get(worker=0))
                lat[tls].append(time.perf_counter() - t)
        for i in range(max(1, n // 20)):
            for tls in settings if i % 2 == 0 else settings[::-1]:
                srv, fp, _ = servers[tls]
                t = time.perf_counter()
                RpcClient(*srv.address, SECRET, tls_fingerprint=fp, timeout=10).close()
                conn[tls].append(time.perf_counter() - t)
    finally:
        for tls, (srv, _, stop) in servers.items():
            clients[tls].close()
            stop.set()
            srv.stop()
    return {tls: {"request": 1000 * statistics.median(lat[tls]), "connect": 1000 * statistics.median(conn[tls])}
            for tls in settings}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tls", default="on,off", help="the settings to compare, the first is the reference")
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--requests", type=int, default=5000)
    args = ap.parse_args()
    settings = args.tls.split(",")
    if not settings or any(s not in ("on", "off") for s in settings):
        ap.error("--tls takes 'on', 'off' or both, comma-separated")
    runs: dict[str, list[dict]] = {s: [] for s in settings}
    for i in range(args.repeat):
        for tls in settings if i % 2 == 0 else settings[::-1]:
            runs[tls].append(experiment(args.trials, tls))
    ref = settings[-1]
    keys = {"handoff_p50_ms": ".3f", "rate": ",.0f", "cpu_ms": ".2f"}  # each figure and its format

    def median(tls: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[tls])

    def ratio(tls: str, key: str) -> float:
        return statistics.median(a[key] / b[key] for a, b in zip(runs[tls], runs[ref]))

    def spread(tls: str, key: str) -> str:
        values = [r[key] for r in runs[tls]]
        return f"{min(values):{keys[key]}}-{max(values):{keys[key]}}"

    print(f"{args.trials:,} trivial trials on 2 LocalBackend workers, median of {args.repeat} rounds "
          f"(ratios to tls={ref}, paired by round; the rounds' range in brackets)")
    print("| tls | hand-off p50 ms | ratio | turnover trials/s | ratio | CPU ms/trial | ratio |")
    print("|---|---|---|---|---|---|---|")
    for tls in settings:
        cells = [f"{median(tls, k):{f}} ({spread(tls, k)}) | {ratio(tls, k):.3f}" for k, f in keys.items()]
        print(f"| {tls} | " + " | ".join(cells) + " |")
    print()
    layer = rpc_layer(settings, args.requests)
    print(f"The RPC layer alone: {args.requests:,} GET round trips and {max(1, args.requests // 20):,} connections "
          f"per setting, p50 (ratios to tls={ref})")
    print("| tls | request ms | ratio | connect ms | ratio |")
    print("|---|---|---|---|---|")
    for tls, f in layer.items():
        print(f"| {tls} | {f['request']:.3f} | {f['request'] / layer[ref]['request']:.2f} | {f['connect']:.2f} "
              f"| {f['connect'] / layer[ref]['connect']:.2f} |")


if __name__ == "__main__":
    main()
