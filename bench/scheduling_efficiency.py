"""Scheduling efficiency: maggy against the ways peers use Spark, on one or more Spark masters.

    .venv/bin/python bench/scheduling_efficiency.py [--trials 20] [--repeat 1]
        [--master local connect standalone yarn] [--baseline PATH]

Every contender runs the same trials, which sleep 0.5, 1.0 or 1.5 s, on 2 task slots: local[2],
a Spark Connect client of a local[2] Connect server (``SparkSession.builder.remote``; maggy only,
as the peers need a SparkContext), the platform's standalone worker (2 cores) or 2 one-core
executors on the platform's YARN (``./scripts/platform up`` first for those two). ``--baseline``
measures another maggy checkout too, each master in the same sitting. Efficiency is the ideal makespan (total trial
time / 2 slots) over the measured one. Each master runs in a process of its own, one after the
other in this sitting, so that their rows compare. Also prints maggy's hand-off latency from a
worker's FINAL to the start of its next trial, its start-up (``lagom`` called -> first trial
running, on executors already up) and its tear-down (last trial ended -> ``lagom`` returned), for
the first call in the process and the later ones, and maggy's own utilisation figure
(``result.stats["utilization"]``: trial seconds over workers x wall time from the first worker's
registration).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SLOTS = 2


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def run_maggy(spark, durations, tmp):
    from maggy import HyperparameterOptConfig, Searchspace, experiment
    from maggy.backends import SparkBackend

    sp = Searchspace(i=("DISCRETE", list(range(len(durations)))))

    def train(i):
        import time
        time.sleep(durations[i])
        return durations[i]

    cfg = HyperparameterOptConfig(searchspace=sp, optimizer="gridsearch", es_policy="none",
                                  num_workers=SLOTS, experiment_dir=tmp, name="bench", resume=False)
    t0 = time.time()
    result = experiment.lagom(train, cfg, backend=SparkBackend(spark), verbose=False)
    t1 = time.time()
    first_start = result.trials["start"].min().timestamp()
    last_end = result.trials["end"].max().timestamp()
    stats = {**result.stats, "startup": first_start - t0, "teardown": t1 - last_end}
    return t1 - t0, sum(result.trials["metric"]), stats


def warm_up(spark, connect: bool) -> None:
    """Executors up and Python workers warm, for the RDD and the DataFrame paths alike."""
    def nothing(batches):
        for _ in batches:  # read to the end: the Python worker is reused
            pass
        return iter(())

    spark.range(0, SLOTS, 1, SLOTS).mapInArrow(nothing, "x long").collect()
    if not connect:
        spark.sparkContext.parallelize(range(SLOTS), SLOTS).count()


def run_waves(spark, durations):
    sc = spark.sparkContext
    t0 = time.perf_counter()
    total = 0.0
    for k in range(0, len(durations), SLOTS):
        wave = durations[k:k + SLOTS]
        total += sum(sc.parallelize(wave, len(wave)).map(sleep_for).collect())
    return time.perf_counter() - t0, total


def run_hyperopt(durations):
    try:
        from hyperopt import STATUS_OK, SparkTrials, fmin, hp, rand
    except ImportError:
        return None
    import numpy as np

    def objective(seconds):
        import time
        time.sleep(seconds)
        return {"loss": seconds, "status": STATUS_OK}

    trials = SparkTrials(parallelism=SLOTS)
    t0 = time.perf_counter()
    fmin(objective, hp.choice("seconds", sorted(set(durations))), algo=rand.suggest,
         max_evals=len(durations), trials=trials, show_progressbar=False,
         rstate=np.random.default_rng(0))
    wall = time.perf_counter() - t0
    return wall, sum(trials.losses())


def platform_env() -> dict[str, str]:
    """The endpoints of the running local platform (``./scripts/platform up``)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".platform", "env")
    if not os.path.exists(path):
        sys.exit("bench: the standalone and yarn masters need the local platform: ./scripts/platform up")
    return dict(line.split("=", 1) for line in open(path).read().split())


def session(master: str):
    """A SparkSession with 2 task slots on ``master`` (local, standalone or yarn)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("maggy-bench").config("spark.ui.showConsoleProgress", "false")
    if master == "connect":
        return builder.remote(f"local[{SLOTS}]").getOrCreate()
    if master == "local":
        return builder.master(f"local[{SLOTS}]").getOrCreate()
    env = platform_env()
    if master == "standalone":
        return builder.master(env["SPARK_MASTER"]).config("spark.executor.cores", "1").getOrCreate()
    os.environ["HADOOP_CONF_DIR"] = env["HADOOP_CONF_DIR"]
    os.environ["PYSPARK_SUBMIT_ARGS"] = (f"--master yarn --properties-file {env['SPARK_YARN_PROPERTIES']} "
                                         f"--conf spark.executor.instances={SLOTS} --conf spark.executor.cores=1 "
                                         "pyspark-shell")
    return builder.getOrCreate()


def measure(master: str, trials: int, repeat: int) -> dict:
    """Every contender's (makespan, work) on ``master``, and maggy's hand-offs and edges."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = session(master)
    connect = master == "connect"
    if not connect:
        spark.sparkContext.setLogLevel("ERROR")
    warm_up(spark, connect)
    durations = [(0.5, 1.0, 1.5)[(7 * i) % 3] for i in range(trials)]
    rows, handoffs, edges = [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            wall, work, stats = run_maggy(spark, durations, tmp)
            edges.append((stats["startup"], stats["teardown"]))
            _, _, again = run_maggy(spark, durations[:SLOTS], tmp)
            edges.append((again["startup"], again["teardown"]))
        rows.append(("maggy (1 job, resident tasks)", wall, work))
        handoffs.append((stats.get("handoff_p50_ms"), stats.get("handoff_p99_ms"), stats.get("utilization")))
        if connect:
            continue
        rows.append(("1 Spark job per wave of 2", *run_waves(spark, durations)))
        hyperopt = run_hyperopt(durations)
        if hyperopt is not None:
            rows.append(("hyperopt SparkTrials(parallelism=2)", *hyperopt))
    spark.stop()
    return {"rows": rows, "handoffs": handoffs, "edges": [edges[0], edges[-1]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--master", nargs="+", choices=["local", "connect", "standalone", "yarn"], default=["local"])
    parser.add_argument("--baseline", help="another maggy checkout to measure beside this one")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one master, in a process of its own
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(args.child, args.trials, args.repeat)))
        return
    results = {}
    failed: dict[str, str] = {}
    trees = [("", None)] + ([(" (base)", os.path.abspath(args.baseline))] if args.baseline else [])
    for master in args.master:  # one SparkContext per process
        for suffix, tree in trees:
            env = {**os.environ, "PYTHONPATH": tree} if tree else None  # the baseline's maggy first on the path
            out = subprocess.run([sys.executable, __file__, "--child", master, "--trials", str(args.trials),
                                  "--repeat", str(args.repeat)], capture_output=True, text=True, env=env)
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode != 0 or not lines:  # e.g. a baseline that predates Connect: said, the rest goes on
                failed[master + suffix] = (out.stderr.strip().splitlines() or ["no output"])[-1][:200]
                continue
            results[master + suffix] = json.loads(lines[0][len("RESULT "):])

    print(f"\n{args.trials} trials of 0.5/1.0/1.5 s on {SLOTS} slots, {args.repeat} run(s) each\n")
    print(f"{'master':17} {'contender':38} {'makespan s':>11} {'ideal s':>8} {'efficiency':>11} {'vs maggy':>9}")
    for master, res in results.items():
        by_name: dict[str, list[tuple[float, float]]] = {}
        for name, wall, work in res["rows"]:
            by_name.setdefault(name, []).append((wall, work / SLOTS))
        maggy_eff = None
        for name, runs in by_name.items():
            wall = statistics.median(w for w, _ in runs)
            ideal = statistics.median(i for _, i in runs)
            eff = ideal / wall
            maggy_eff = maggy_eff or eff
            print(f"{master:17} {name:38} {wall:11.2f} {ideal:8.2f} {eff:11.2f} {eff / maggy_eff:9.2f}")
    print(f"\n{'master':17} {'maggy':38} {'p50 ms':>11} {'p99 ms':>8} {'start-up s':>11} {'tear-down s':>11}")
    for master, res in results.items():
        p50 = statistics.median(h[0] for h in res["handoffs"])
        p99 = max(h[1] for h in res["handoffs"])
        print(f"{master:17} {'hand-off FINAL -> next trial start':38} {p50:11.2f} {p99:8.2f}")
        busy = statistics.median(h[2] for h in res["handoffs"])
        print(f"{master:17} {'utilization (stats, busy share)':38} {busy:11.1%}")
        for label, (up, down) in zip(("first lagom in the process", "a later lagom"), res["edges"]):
            print(f"{master:17} {label:38} {'':11} {'':8} {up:11.3f} {down:11.3f}")
    for master, why in failed.items():
        print(f"{master:17} failed: {why}")


if __name__ == "__main__":
    main()
