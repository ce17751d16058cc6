"""Trials per second for trivial trials, with the progress display on and off.

    .venv/bin/python bench/throughput.py [--trials 100000] [--baseline PATH]

Each row is one ``lagom`` of ``--trials`` trials of ``lambda x: x`` on two ``LocalBackend``
workers (random search, no early stopping, no MLflow), run in a child process with the tree
under test first on its path. The rate is given overall and over the first and the last tenth
of the trials (from the trials' end times): a per-trial cost that grows with the number of
trials shows as a last tenth slower than the first. ``--baseline`` measures an earlier checkout
(e.g. ``git worktree add /tmp/base fe1751a``) in the same sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RUN = textwrap.dedent("""
    import json, sys, time
    from maggy import HyperparameterOptConfig, Searchspace, experiment
    from maggy.backends import LocalBackend
    trials, verbose, directory = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=trials,
                                  num_workers=2, es_policy="none", experiment_dir=directory, hb_interval=1.0)
    t0 = time.time()
    result = experiment.lagom(lambda x: x, cfg, backend=LocalBackend(), verbose=verbose)
    total = time.time() - t0
    ends = sorted(t.timestamp() for t in result.trials["end"])
    tenth = max(1, len(ends) // 10)
    first = tenth / (ends[tenth - 1] - ends[0] + 1e-9)
    last = tenth / (ends[-1] - ends[-tenth] + 1e-9)
    print(json.dumps({"done": len(ends), "total": total, "first": first, "last": last}))
""")


def run(tree: str, trials: int, verbose: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", _RUN, str(trials), "1" if verbose else "0", tmp], cwd=tree,
                             env={**os.environ, "PYTHONPATH": tree}, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=3600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--baseline", help="another maggy checkout to measure beside this one")
    args = ap.parse_args()
    trees = [("this tree", ROOT)] + ([("baseline", os.path.abspath(args.baseline))] if args.baseline else [])
    print(f"{args.trials:,} trivial trials on 2 LocalBackend workers")
    print("| tree | verbose | trials/s overall | first tenth | last tenth | last/first |")
    print("|---|---|---|---|---|---|")
    for label, tree in trees:
        for verbose in (False, True):
            r = run(tree, args.trials, verbose)
            print(f"| {label} | {verbose} | {r['done'] / r['total']:,.0f} | {r['first']:,.0f} | {r['last']:,.0f} | "
                  f"{r['last'] / r['first']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
