"""Scheduling efficiency on one local[2] Spark: maggy against the ways peers use Spark.

    .venv/bin/python bench/scheduling_efficiency.py [--trials 20] [--repeat 1]

Every contender runs the same trials, which sleep 0.5, 1.0 or 1.5 s. Efficiency is the ideal
makespan (total trial time / 2 slots) over the measured one, in one process, on one Spark.
Also prints maggy's hand-off latency from a worker's FINAL to the start of its next trial, its
start-up (``lagom`` called -> first trial running, on executors already warm) and its tear-down
(last trial ended -> ``lagom`` returned), for the first call in the process and the later ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
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
                                  num_workers=SLOTS, experiment_dir=tmp, name="bench")
    t0 = time.time()
    result = experiment.lagom(train, cfg, backend=SparkBackend(spark), verbose=False)
    t1 = time.time()
    first_start = result.trials["start"].min().timestamp()
    last_end = result.trials["end"].max().timestamp()
    stats = {**result.stats, "startup": first_start - t0, "teardown": t1 - last_end}
    return t1 - t0, sum(result.trials["metric"]), stats


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{SLOTS}]").appName("maggy-bench")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.parallelize(range(SLOTS), SLOTS).count()  # warm the Python workers
    durations = [(0.5, 1.0, 1.5)[(7 * i) % 3] for i in range(args.trials)]

    rows = []
    handoffs = []
    edges = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            wall, work, stats = run_maggy(spark, durations, tmp)
            edges.append((stats["startup"], stats["teardown"]))
            _, _, again = run_maggy(spark, durations[:SLOTS], tmp)
            edges.append((again["startup"], again["teardown"]))
        rows.append(("maggy (1 job, resident tasks)", wall, work))
        handoffs.append((stats.get("handoff_p50_ms"), stats.get("handoff_p99_ms")))
        rows.append(("1 Spark job per wave of 2", *run_waves(spark, durations)))
        hyperopt = run_hyperopt(durations)
        if hyperopt is not None:
            rows.append(("hyperopt SparkTrials(parallelism=2)", *hyperopt))
    spark.stop()

    print(f"\n{args.trials} trials of 0.5/1.0/1.5 s on local[{SLOTS}], {args.repeat} run(s) each\n")
    print(f"{'contender':40} {'makespan s':>11} {'ideal s':>8} {'efficiency':>11} {'vs maggy':>9}")
    by_name: dict[str, list[tuple[float, float]]] = {}
    for name, wall, work in rows:
        by_name.setdefault(name, []).append((wall, work / SLOTS))
    maggy_eff = None
    for name, runs in by_name.items():
        wall = statistics.median(w for w, _ in runs)
        ideal = statistics.median(i for _, i in runs)
        eff = ideal / wall
        maggy_eff = maggy_eff or eff
        print(f"{name:40} {wall:11.2f} {ideal:8.2f} {eff:11.2f} {eff / maggy_eff:9.2f}")
    p50 = statistics.median(h[0] for h in handoffs)
    p99 = max(h[1] for h in handoffs)
    print(f"\nmaggy hand-off FINAL -> next trial start: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(f"\n{'maggy edges (s)':40} {'start-up':>11} {'tear-down':>11}")
    for label, (up, down) in zip(("first lagom in the process", "a later lagom"), (edges[0], edges[-1])):
        print(f"{label:40} {up:11.3f} {down:11.3f}")


if __name__ == "__main__":
    main()
