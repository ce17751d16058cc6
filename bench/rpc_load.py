"""Load on the driver's RPC server over loopback: idle connections, and many heartbeating workers.

    .venv/bin/python bench/rpc_load.py [--idle 0,1000,5000,10000] [--workers 1000,5000]
                                       [--seconds 3] [--baseline PATH]

Table 1: one real worker (``RpcClient``) sends METRIC heartbeats back to back for ``--seconds``
while N other connections are open and silent (authenticated, so the server keeps them): requests
per second and latency percentiles. With ``--baseline PATH`` (a checkout of an earlier maggy, e.g.
``git worktree add /tmp/base fe1751a``) the same table is measured for that tree in the same
sitting, through the same public API.

Table 2: N simulated workers (asyncio, in one separate process) each send 10 METRIC heartbeats a
second for ``--seconds``: the rate achieved and its latency percentiles. On a 2-core machine the
generator and the server share the cores, so the achieved rate is also the generator's limit.

The server answers through a stand-in driver thread that replies OK: the figures are the RPC
layer's, not the scheduler's. Everything binds to 127.0.0.1; every process stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import subprocess
import sys
import textwrap
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = b"b" * 32

# Runs in a child with the maggy tree under test on its path: opens N idle clients, then one
# busy client that reports its latencies as JSON.
_WORKER = textwrap.dedent("""
    import json, sys, time
    from maggy.rpc import RpcClient
    from maggy.rpc.messages import Metric
    port, idle, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    secret = b"b" * 32
    held = [RpcClient("127.0.0.1", port, secret) for _ in range(idle)]
    busy = RpcClient("127.0.0.1", port, secret)
    msg = Metric(worker=0, trial_id="t", points=((0, 0.5),))
    lat = []
    end = time.perf_counter() + seconds
    while (t := time.perf_counter()) < end:
        busy.request(msg)
        lat.append(time.perf_counter() - t)
    print(json.dumps(lat))
""")

# Runs in a child: N asyncio workers, each with its own authenticated connection, 10 beats/s.
_SWARM = textwrap.dedent("""
    import asyncio, json, random, sys, time
    from maggy.rpc.messages import Metric
    from maggy.rpc.protocol import CHALLENGE, HEADER, MAC_SIZE, respond
    port, n, seconds, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), 10.0
    secret = b"b" * 32
    lat, late = [], 0

    async def connect(i):
        while True:  # as RpcClient does: a connection dropped from a full listen queue is retried
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                hello = await asyncio.wait_for(reader.readexactly(CHALLENGE.size), 10)
            except asyncio.TimeoutError:
                writer.close()
                continue
            answer, send, receive = respond(secret, hello)
            writer.write(answer)
            return reader, writer, send

    async def worker(i, conn, start, stop):
        global late
        reader, writer, send = conn
        body = Metric(worker=i, trial_id="t", points=((0, 0.5),)).to_body()
        await asyncio.sleep(max(0.0, start - time.perf_counter()) + random.random() / rate)
        seq, due = 0, time.perf_counter()
        while due < stop:
            writer.write(send.encode(Metric.TYPE, seq, body))
            sent = time.perf_counter()
            header = await reader.readexactly(HEADER.size)
            await reader.readexactly(MAC_SIZE + HEADER.unpack(header)[-1])
            now = time.perf_counter()
            lat.append(now - sent)
            seq, due = seq + 1, due + 1 / rate
            if due < now:
                late += 1
                due = now
            await asyncio.sleep(due - now)
        writer.close()

    async def main():
        conns = await asyncio.gather(*(connect(i) for i in range(n)))  # everyone in before the clock starts
        start = time.perf_counter() + 0.5
        stop = start + seconds
        await asyncio.gather(*(worker(i, c, start, stop) for i, c in enumerate(conns)))
        return seconds

    elapsed = asyncio.run(main())
    print(json.dumps({"lat": lat, "late": late, "elapsed": elapsed}))
""")


def _serve(tree: str):
    """Start an RpcServer from ``tree`` with a stand-in driver; returns (server, stop)."""
    sys.path.insert(0, tree)
    try:
        for name in [m for m in sys.modules if m == "maggy" or m.startswith("maggy.")]:
            del sys.modules[name]
        from maggy.engine.server import RpcServer
        from maggy.rpc.messages import Ok
    finally:
        sys.path.pop(0)
    inbox: queue.Queue = queue.Queue()
    try:
        server = RpcServer(SECRET, inbox, max_connections=20_000).start()
    except TypeError:  # a tree from before connection caps
        server = RpcServer(SECRET, inbox).start()
    stop = threading.Event()

    def answer():
        while not stop.is_set():
            try:
                msg = inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if msg.message is not None:
                server.reply(msg.conn, Ok())

    threading.Thread(target=answer, daemon=True).start()
    return server, stop


def _child(tree: str, script: str, *args) -> dict | list:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, cwd=tree, capture_output=True,
                         text=True, timeout=600, check=True)
    return json.loads(out.stdout)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def _against_server(tree: str, script: str, *args) -> dict | list:
    """Run a child ``script`` against a fresh server of ``tree`` (its port first in argv)."""
    server, stop = _serve(tree)
    try:
        return _child(tree, script, server.address[1], *args)
    finally:
        stop.set()
        server.stop()


def idle_table(tree: str, idles: list[int], seconds: float) -> list[tuple]:
    rows = []
    for idle in idles:
        lat = _against_server(tree, _WORKER, idle, seconds)
        rows.append((idle, len(lat) / seconds, _pct(lat, 0.5), _pct(lat, 0.99)))
    return rows


def swarm_table(tree: str, sizes: list[int], seconds: float) -> list[tuple]:
    rows = []
    for n in sizes:
        got = _against_server(tree, _SWARM, n, seconds)
        lat = got["lat"]
        rows.append((n, n * 10, len(lat) / got["elapsed"], _pct(lat, 0.5), _pct(lat, 0.99), got["late"]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--idle", default="0,1000,5000,10000")
    ap.add_argument("--workers", default="1000,5000")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--baseline", help="another maggy checkout to measure beside this one")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    idles = [int(x) for x in args.idle.split(",")]
    trees = [("this tree", ROOT)] + ([("baseline", os.path.abspath(args.baseline))] if args.baseline else [])
    print(f"One real worker, back-to-back METRIC requests, {args.seconds:g} s per row")
    print("| tree | idle connections | requests/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for label, tree in trees:
        for idle, rate, p50, p99 in idle_table(tree, idles, args.seconds):
            print(f"| {label} | {idle:,} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |")
    print()
    print(f"Simulated workers, 10 METRIC heartbeats/s each, {args.seconds:g} s (this tree)")
    print("| workers | offered req/s | achieved req/s | p50 ms | p99 ms | beats sent late |")
    print("|---|---|---|---|---|---|")
    for n, offered, achieved, p50, p99, late in swarm_table(ROOT, [int(x) for x in args.workers.split(",")],
                                                            args.seconds):
        print(f"| {n:,} | {offered:,} | {achieved:,.0f} | {p50:.2f} | {p99:.2f} | {late:,} |")


if __name__ == "__main__":
    main()
