"""Executors killed, and a whole YARN node lost, under a running experiment on the local platform,
each beside the same experiment undisturbed on the same cluster, in one sitting.

    ./scripts/platform up
    .venv/bin/python bench/chaos.py [--trials 30] [--epochs 20] [--every 5] [--kill-every 15]

Each trial trains ``--epochs`` epochs of 0.1 s, saving a checkpoint (on HDFS) every ``--every``
epochs; every computed epoch is appended to a file. On the standalone cluster, the executor JVM
under a running trial is SIGKILLed every ``--kill-every`` seconds; the standalone worker starts a
new executor and the trial continues elsewhere from its checkpoint. On YARN (two NodeManagers),
``--kill-every`` seconds in, the node under a running trial is lost: its NodeManager and every
container on it SIGKILLed; its trials continue on the other node (if the application master was
there too, in YARN's second attempt). The platform is one node short afterwards: ``up`` again.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from local_platform import executor_jvm, lose_node  # noqa: E402

EPOCH_SECONDS = 0.1
#: Set by job(); train travels by value with it (executors do not share the driver's environment).
SETTINGS = {"calls": "", "epochs": 20, "every": 5}


def train(k, reporter):
    import json
    import os
    import time

    epochs, every = SETTINGS["epochs"], SETTINGS["every"]
    path = os.path.join(reporter.checkpoint_dir, "state.json")
    start = json.load(open(path))["epoch"] if os.path.exists(path) else 0
    for epoch in range(start, epochs):
        time.sleep(0.1)
        with open(SETTINGS["calls"], "a") as f:
            f.write(f"{k} {epoch} {os.getpid()}\n")
        reporter.broadcast(1.0 / (epoch + 1) + k / 1000, step=epoch)
        if (epoch + 1) % every == 0:
            with open(path, "w") as f:
                json.dump({"epoch": epoch + 1}, f)
            reporter.checkpoint()
    return {"metric": 1.0 / epochs + k / 1000, "pid": os.getpid()}


def job(master: str, root: str, trials: int) -> None:
    from maggy import HyperparameterOptConfig, Searchspace, experiment
    from maggy.backends import SparkBackend

    SETTINGS.update(calls=os.environ["BENCH_CALLS"], epochs=int(os.environ["BENCH_EPOCHS"]),
                    every=int(os.environ["BENCH_EVERY"]))
    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", list(range(trials)))),
                                  optimizer="gridsearch", es_policy="none", hb_interval=0.2, num_workers=2,
                                  name="chaos", experiment_dir=root, resume=False)
    result = experiment.lagom(train, cfg, backend=SparkBackend(master=master), verbose=False)
    print("RESULT " + json.dumps({"states": result.stats["states"], "restarts": int(result.trials["restarts"].sum())}))


def run(env: dict, args, calls: pathlib.Path, yarn: bool, fault: bool) -> tuple[float, dict, int]:
    """One experiment on the standalone master or YARN; with ``fault``, executors killed (standalone)
    or a node lost once (YARN). Returns the wall time, the job's result and the number of faults."""
    master = "yarn" if yarn else env["SPARK_MASTER"]
    cmd = [sys.executable, __file__, "--job", master, env["HDFS_URI"] + f"/bench-chaos/{uuid.uuid4().hex}",
           "--trials", str(args.trials)]
    run_env = {**os.environ, **env, "BENCH_CALLS": str(calls), "BENCH_EPOCHS": str(args.epochs),
               "BENCH_EVERY": str(args.every)}
    if yarn:  # client mode, as a notebook on an edge node; a second attempt if the AM's node is the lost one
        run_env["PYSPARK_SUBMIT_ARGS"] = (f"--master yarn --properties-file {env['SPARK_YARN_PROPERTIES']} "
                                          "--conf spark.executor.instances=2 --conf spark.yarn.maxAppAttempts=2 "
                                          "pyspark-shell")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    kills, next_kill = 0, t0 + args.kill_every
    while proc.poll() is None:
        time.sleep(0.1)
        if fault and not (yarn and kills) and time.perf_counter() >= next_kill and calls.exists():
            lines = calls.read_text().splitlines()
            pid = int(lines[-1].split()[2]) if lines else None
            jvm = executor_jvm(pid) if pid else None
            if jvm is not None:
                if yarn:
                    lose_node(jvm)
                else:
                    os.kill(jvm, signal.SIGKILL)
                kills += 1
                next_kill = time.perf_counter() + args.kill_every
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return wall, json.loads(line[len("RESULT "):]), kills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--kill-every", type=float, default=15.0)
    parser.add_argument("--job", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        return job(*args.job, args.trials)
    env_file = ROOT / ".platform" / "env"
    if not env_file.exists():
        sys.exit("bench/chaos.py needs the local platform: ./scripts/platform up")
    env = dict(line.split("=", 1) for line in env_file.read_text().split())
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    print(f"\n{args.trials} trials x {args.epochs} epochs of {EPOCH_SECONDS}s, checkpoint every {args.every} epochs "
          f"on HDFS, 2 executors\n")
    print(f"{'run':44} {'makespan s':>11} {'ratio':>6} {'faults':>6} {'lost':>5} {'from 0':>7} {'twice':>6} "
          f"{'bound':>6}")
    for yarn, fault in ((False, f"an executor killed every {args.kill_every:g}s"),
                        (True, f"a node lost after {args.kill_every:g}s")):
        where = "YARN, 2 nodes" if yarn else "standalone"
        with tempfile.TemporaryDirectory() as tmp:
            calm_wall, calm, _ = run(env, args, pathlib.Path(tmp) / "calm.txt", yarn, False)
            chaos_wall, chaos, kills = run(env, args, pathlib.Path(tmp) / "chaos.txt", yarn, True)
            sequence = [tuple(map(int, line.split()[:2]))
                        for line in (pathlib.Path(tmp) / "chaos.txt").read_text().splitlines()]
        epochs = collections.Counter(sequence)
        twice = sum(n - 1 for n in epochs.values() if n > 1)
        checkpointed, from_scratch = set(), set()
        for k, ep in sequence:
            if ep == 0 and k in checkpointed:
                from_scratch.add(k)
            if ep + 1 >= args.every:
                checkpointed.add(k)
        lost = args.trials - chaos["states"].get("FINALIZED", 0)
        print(f"{f'{where}: undisturbed':44} {calm_wall:11.2f} {1.0:6.2f} {0:6d} "
              f"{args.trials - calm['states'].get('FINALIZED', 0):5d} {0:7d} {0:6d} {'':>6}")
        # a lost node takes both of its executors' running trials (at most 2 here) with it
        bound = kills * args.every * (2 if yarn else 1)
        print(f"{f'{where}: {fault}':44} {chaos_wall:11.2f} {chaos_wall / calm_wall:6.2f} {kills:6d} {lost:5d} "
              f"{len(from_scratch):7d} {twice:6d} {bound:6d}   (restarts counted by maggy: {chaos['restarts']})")
    print("\nlost: trials not FINALIZED; from 0: trials that began again at epoch 0 after a checkpoint; twice: epochs "
          "computed twice; bound: one checkpoint interval per trial a fault hit")


if __name__ == "__main__":
    main()
