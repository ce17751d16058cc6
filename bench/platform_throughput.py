"""Trivial-trial turnover on Spark local[2] and local[4] with the experiment directory on local
disk, on the local platform's HDFS, and on HDFS with the platform's MLflow tracking server, in
one sitting.

    ./scripts/platform up && .venv/bin/python bench/platform_throughput.py [--trials 200] [--baseline PATH]

Each row is one ``lagom`` of ``--trials`` trials that broadcast three steps and return ``x``
(random search, no early stopping), run in a child process with the tree under test first on its
path and a fresh SparkSession ``local[N]`` (``backend="spark"``, one worker per task slot). The
rate is the trials ended over the span from the first trial's start to the last one's end, so
Spark's start-up is left out. Where a trial's time goes shows in the storage calls the
experiment's writer made per trial (journal and trial logs; none on a tree without the writer)
and the MLflow sends per trial from the driver (one request each, two when it ends a run).
The platform's endpoints are the KEY=VALUE lines that ``./scripts/platform status`` prints
(those the platform tests read from ``up``). Aims: HDFS at least half the local rate,
HDFS+MLflow at least a tenth. "hdfs+mlflow best" is the same with ``log_trials="best"`` (one
MLflow run per experiment while it runs, the best trial's run made at the end): what a user whose
trials are shorter than the tracking server can record chooses. What limits HDFS+MLflow shows in
the server's own pace, measured first: bare MLflow clients on two threads make runs the way a
trial run is made (create, one batch, end: three requests), so requests/s over three is the most
trial runs per second the server can hold, whatever maggy does. ``--baseline`` measures an earlier
checkout (e.g. ``git worktree add /tmp/base HEAD``) in the same sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASTERS = (2, 4)
CONFIGS = ("local", "hdfs", "hdfs+mlflow", "hdfs+mlflow best")
AIMS = {"hdfs": 0.5, "hdfs+mlflow": 0.1, "hdfs+mlflow best": 0.1}

_RUN = textwrap.dedent("""
    import json, sys, time
    from pyspark.sql import SparkSession
    from maggy import HyperparameterOptConfig, Searchspace, experiment
    trials, slots, directory, name, tracking, log_trials = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:7]

    def train(x, reporter):
        for s in range(3):
            reporter.broadcast(metric=x, step=s)
        return x

    spark = (SparkSession.builder.master(f"local[{slots}]").appName("bench-platform-throughput")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=trials,
                                  optimizer="randomsearch", es_policy="none", name=name,
                                  experiment_dir=directory, tracking_uri=tracking or None,
                                  log_trials=log_trials)
    t0 = time.time()
    result = experiment.lagom(train, cfg, backend="spark", verbose=False)
    wall = time.time() - t0
    spark.stop()
    done = result.trials.dropna(subset=["start", "end"])
    span = (done["end"].max() - done["start"].min()).total_seconds()
    writes, tracking = result.stats.get("writes", {}), result.stats.get("tracking", {})
    print(json.dumps({"done": len(done), "span": span, "wall": wall, "writes": writes.get("calls"),
                      "sends": tracking.get("sends")}))
""")


def platform() -> dict[str, str]:
    """The running platform's endpoints; exits naming ``./scripts/platform up`` if it is down."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "local_platform.py"), "status"],
                         capture_output=True, text=True, timeout=60)
    env = dict(re.findall(r"^([A-Z0-9_]+)=(\S+)$", out.stdout, flags=re.MULTILINE))
    if out.returncode != 0 or not {"WEBHDFS_URL", "MLFLOW_TRACKING_URI"} <= set(env):
        sys.exit(f"bench: the local platform is not up ({(out.stderr or out.stdout).strip() or 'no endpoints'}); "
                 "start it with ./scripts/platform up")
    return env


def run(tree: str, trials: int, slots: int, config: str, env: dict[str, str]) -> dict:
    """One row in a child process: its trials ended, their span and the lagom's wall time, or its error."""
    name = f"bench-platform-{uuid.uuid4().hex[:8]}"
    tracking = env["MLFLOW_TRACKING_URI"] if config.startswith("hdfs+mlflow") else ""
    log_trials = "best" if config.endswith(" best") else "all"
    child_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # untracked means untracked
    child_env.update(PYTHONPATH=tree, PYSPARK_PYTHON=sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        directory = tmp if config == "local" else f"webhdfs://{env['WEBHDFS_URL'].split('://', 1)[1]}/bench/{name}"
        try:
            out = subprocess.run([sys.executable, "-c", _RUN, str(trials), str(slots), directory, name, tracking,
                                  log_trials],
                                 cwd=tree, env=child_env, capture_output=True, text=True, timeout=3600)
        except subprocess.TimeoutExpired:
            return {"error": "timed out after 3600 s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines or not lines[-1].startswith("{"):
        tail = [line for line in out.stderr.splitlines() if line.strip()][-1:] or [f"exit {out.returncode}"]
        return {"error": tail[0][:160]}
    return json.loads(lines[-1])


def server_pace(uri: str, runs: int = 120, threads: int = 2) -> float:
    """Requests per second the tracking server answers to bare clients making trial-like runs."""
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # no "View run" line per run
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(f"bench-server-pace-{uuid.uuid4().hex[:8]}")

    def one(i: int) -> None:
        run_id = client.create_run(exp, run_name=f"pace-{i}", tags={"bench": "pace"}).info.run_id
        client.log_batch(run_id, metrics=[Metric("metric", 0.5, 0, s) for s in range(3)], params=[Param("x", "0.5")])
        client.set_terminated(run_id, "FINISHED")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(runs // 4)))  # a warm-up: a freshly started server answers slower
        t0 = time.perf_counter()
        list(pool.map(one, range(runs)))
    return 3 * runs / (time.perf_counter() - t0)


def rate(r: dict) -> float | None:
    return r["done"] / r["span"] if "error" not in r and r["span"] > 0 else None


def fmt(x: float | None, spec: str = ",.1f") -> str:
    return "—" if x is None else format(x, spec)


def summary(label: str, rows: dict[tuple[int, str], dict], ceiling: float) -> None:
    """Ratios to the local-disk row per master, against the aims, HDFS+MLflow against the
    server's ``ceiling`` (trial runs/s), and the growth from local[2] to local[4]."""
    print(f"\n{label}:")
    print("| master | HDFS/local (aim ≥0.5) | HDFS+MLflow/local (aim ≥0.1) | HDFS+MLflow best/local | "
          "HDFS+MLflow/server's ceiling |")
    print("|---|---|---|---|---|")
    for slots in MASTERS:
        base = rate(rows[slots, "local"])
        cells = []
        for config in CONFIGS[1:]:
            r = rate(rows[slots, config])
            ratio = None if base is None or r is None else r / base
            cells.append("—" if ratio is None else f"{ratio:.3f} ({'met' if ratio >= AIMS[config] else 'MISSED'})")
        tracked = rate(rows[slots, "hdfs+mlflow"])
        cells.append("—" if tracked is None else f"{tracked / ceiling:.2f}")
        print(f"| local[{slots}] | " + " | ".join(cells) + " |")
    print("| configuration | local[4]/local[2] | grows |")
    print("|---|---|---|")
    for config in CONFIGS:
        two, four = rate(rows[2, config]), rate(rows[4, config])
        growth = None if two is None or four is None else four / two
        print(f"| {config} | {fmt(growth, '.2f')} | {'—' if growth is None else 'yes' if growth > 1 else 'no'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--baseline", help="another maggy checkout to measure beside this one")
    args = ap.parse_args()
    env = platform()
    trees = [("this tree", ROOT)] + ([("baseline", os.path.abspath(args.baseline))] if args.baseline else [])
    print(f"{args.trials:,} trivial trials (3 broadcasts each) per row, Spark local[N], one worker per slot")
    print(f"HDFS {env['WEBHDFS_URL']}, MLflow {env['MLFLOW_TRACKING_URI']}")
    pace = server_pace(env["MLFLOW_TRACKING_URI"])
    print(f"MLflow server alone: {pace:,.0f} requests/s, so at most {pace / 3:,.1f} trial runs/s (3 requests each)\n")
    print("| tree | master | experiment dir | trials ended | span s | trials/s | storage calls/trial | "
          "MLflow sends/trial | lagom wall s | row wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    results: dict[str, dict[tuple[int, str], dict]] = {}
    for label, tree in trees:
        for slots in MASTERS:
            for config in CONFIGS:
                t0 = time.monotonic()
                r = results.setdefault(label, {})[slots, config] = run(tree, args.trials, slots, config, env)
                took = time.monotonic() - t0
                if "error" in r:
                    print(f"| {label} | local[{slots}] | {config} | failed: {r['error']} | | | | | | {took:.0f} |",
                          flush=True)
                else:
                    per = {k: None if r.get(k) is None else r[k] / max(r["done"], 1) for k in ("writes", "sends")}
                    print(f"| {label} | local[{slots}] | {config} | {r['done']} | {r['span']:.2f} | "
                          f"{fmt(rate(r))} | {fmt(per['writes'], '.2f')} | {fmt(per['sends'], '.2f')} | "
                          f"{r['wall']:.1f} | {took:.0f} |", flush=True)
    for label, rows in results.items():
        summary(label, rows, pace / 3)
    if any("error" in r for rows in results.values() for r in rows.values()):
        sys.exit("\nbench: some rows failed (above)")


if __name__ == "__main__":
    main()
