"""What a driver crash costs: an experiment killed at 25 %, 50 % and 75 % and resumed each time,
beside the same experiment run undisturbed, in one sitting.

    .venv/bin/python bench/resume.py [--trials 40] [--epochs 10] [--every 2] [--backend local]

Each trial trains ``--epochs`` epochs of 0.05 s and saves a checkpoint every ``--every`` epochs;
every computed epoch is appended to a file, so epochs computed twice are counted exactly. The
driver process group is SIGKILLed when the journal shows the given share of trials ended and the
trials that followed are half-way through.
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

EPOCH_SECONDS = 0.05


def train(lr, reporter):
    import json
    import os
    import time

    epochs, every = int(os.environ["BENCH_EPOCHS"]), int(os.environ["BENCH_EVERY"])
    path = os.path.join(reporter.checkpoint_dir, "state.json")
    start = 0
    if os.path.exists(path):
        with open(path) as f:
            start = json.load(f)["epoch"]
    loss = 1.0
    for epoch in range(start, epochs):
        time.sleep(EPOCH_SECONDS)
        loss = (lr - 0.3) ** 2 + 1.0 / (epoch + 1)
        with open(os.environ["BENCH_CALLS"], "a") as f:
            f.write(f"{reporter.trial_id} {epoch}\n")
        if (epoch + 1) % every == 0:
            with open(path + ".tmp", "w") as f:
                json.dump({"epoch": epoch + 1}, f)
            os.replace(path + ".tmp", path)
        reporter.broadcast(loss, step=epoch)
    return loss


def job(root: str, trials: int, backend: str) -> None:
    """One driver: the experiment, continued if the directory holds it."""
    from maggy import HyperparameterOptConfig, Searchspace, experiment

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cfg = HyperparameterOptConfig(searchspace=Searchspace(lr=("DOUBLE", [0.0, 1.0])), num_trials=trials,
                                  num_workers=2, direction="min", es_policy="none", seed=0, hb_interval=0.05,
                                  name="bench-resume", experiment_dir=root)
    result = experiment.lagom(train, cfg, backend=backend, verbose=False)
    print("RESULT " + json.dumps({"trials": len(result.trials), "resumes": result.stats["resumes"]}))


def ended(root: pathlib.Path) -> int:
    """Trials ended so far, from the complete lines of the journal."""
    runs = list((root / "bench-resume").glob("*/journal.jsonl"))
    if not runs:
        return 0
    states = {}
    for line in runs[0].read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            e = json.loads(line)
            if e["event"] == "trial":
                states[e["trial_id"]] = e["state"]
    return sum(s in ("FINALIZED", "EARLY_STOPPED", "ERROR") for s in states.values())


def drive(root: pathlib.Path, calls: pathlib.Path, args, kill_at: list[int]) -> tuple[float, list[int]]:
    """Run the experiment, killing the driver at each count of ended trials; the summed wall time
    and how many trials were running at each kill."""
    env = {**os.environ, "BENCH_CALLS": str(calls), "BENCH_EPOCHS": str(args.epochs), "BENCH_EVERY": str(args.every)}
    cmd = [sys.executable, __file__, "--job", str(root), "--trials", str(args.trials), "--backend", args.backend]
    wall, in_flight = 0.0, []
    for target in [*kill_at, None]:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                start_new_session=True)
        if target is None:
            out, _ = proc.communicate(timeout=600)
            wall += time.perf_counter() - t0
            assert proc.returncode == 0 and "RESULT" in out, out
            return wall, in_flight
        deadline = time.monotonic() + 600
        while ended(root) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.55 * args.epochs * EPOCH_SECONDS)  # the next trials are half-way, mid-interval
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        wall += time.perf_counter() - t0
        journal = next((root / "bench-resume").glob("*/journal.jsonl")).read_text()
        states = {}
        for line in journal.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e["event"] == "trial":
                states[e["trial_id"]] = e["state"]
        in_flight.append(sum(s == "RUNNING" for s in states.values()))
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--backend", default="local", choices=("local", "spark"))
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        return job(args.job, args.trials, args.backend)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        plain, _ = drive(tmp / "plain", tmp / "plain.txt", args, [])
        kills = [args.trials * k // 4 for k in (1, 2, 3)]
        killed, in_flight = drive(tmp / "killed", tmp / "killed.txt", args, kills)
        sequence = [tuple(line.split()) for line in (tmp / "killed.txt").read_text().splitlines()]
        epochs = collections.Counter(sequence)
        baseline = collections.Counter(tuple(line.split()) for line in (tmp / "plain.txt").read_text().splitlines())
    twice = sum(n - 1 for n in epochs.values() if n > 1)
    checkpointed, from_scratch = set(), set()
    for tid, ep in sequence:  # epoch 0 again after the trial had saved a checkpoint
        if ep == "0" and tid in checkpointed:
            from_scratch.add(tid)
        if int(ep) + 1 >= args.every:
            checkpointed.add(tid)
    bound = sum(in_flight) * args.every
    print(f"\n{args.trials} trials x {args.epochs} epochs of {EPOCH_SECONDS}s, checkpoint every {args.every} epochs, "
          f"{args.backend} backend, driver killed after {kills} trials ended\n")
    print(f"{'run':34} {'makespan s':>11} {'ratio':>6} {'epochs':>7} {'twice':>6} {'bound':>6} {'from 0':>7}")
    print(f"{'undisturbed':34} {plain:11.2f} {1.0:6.2f} {sum(baseline.values()):7d} {0:6d} {'':>6} {0:7d}")
    print(f"{'killed 3 times, resumed each time':34} {killed:11.2f} {killed / plain:6.2f} {sum(epochs.values()):7d} "
          f"{twice:6d} {bound:6d} {len(from_scratch):7d}")
    print(f"\ntrials running at each kill: {in_flight}; 'twice' must stay within 'bound' "
          "(one checkpoint interval per trial running at a kill); 'from 0': trials started again from epoch 0 "
          "after they had saved a checkpoint")


if __name__ == "__main__":
    main()
