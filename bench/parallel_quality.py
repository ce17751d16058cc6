"""Parallel quality: what k workers cost each optimizer's search, in virtual time, without Spark.

    .venv/bin/python bench/parallel_quality.py                  # the full table: 2 problems, 10 seeds (~8 min)
    .venv/bin/python bench/parallel_quality.py --seeds 100 --only random,tpe,optuna-tpe --trials 20 40
    .venv/bin/python bench/parallel_quality.py --seeds 5 --workers 1 2 --problems mlp7 --only tpe   # seconds

A simulator drives the real optimizers through the real :class:`~maggy.engine.scheduler.Scheduler`
in the driver's order (a run's end is recorded, its worker is handed the next trial, then the
optimizer learns and a point is prepared ahead), with ``k`` workers and trial durations drawn
from a log-normal distribution (median 1, sigma 0.5; the same draws for every contender of a
seed), on a virtual clock. Optuna's TPE (``constant_liar=True``, its ask/tell API with the ``k``
trials in flight) runs on the same clock and durations: a thread that ends a trial tells its
result and asks for the next one. ASHA + TPE (rungs 1, 3, 9 of 9; η = 3) spends the compute of
``--trials`` full-budget trials, a run costing its share of the budget, and counts the
full-budget runs. GP maximises expected improvement over 300 candidates with one refinement (the
default's 1000 and 3 take about 3x as long, and the same code decides what it proposes).

Per problem and number of trials, each contender's row holds: the median best value over the
seeds with k = 1, 2, 4 and 8 workers; the loss from parallelism (the median best with k workers
minus that with one, lower is better); the share of its one-worker gain over random search
(random's median best minus its own) that it keeps with k workers; how many runs started fewer
trials than asked; and the reply path's time per ended trial (p50 and p99 over every run, in
real milliseconds: maggy's ``record_end`` and ``next_trial``, which checks the point prepared
ahead and asks again when it is outdated; Optuna's ``tell`` and ``ask``).
"""

from __future__ import annotations

import argparse
import heapq
import os
import statistics
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.optimizer_quality import optuna_distributions, optuna_version  # noqa: E402
from bench.problems import GBM8, HARTMANN6_MIXED, MLP7, Problem  # noqa: E402
from maggy.earlystop import NoStopping  # noqa: E402
from maggy.engine.scheduler import Scheduler  # noqa: E402
from maggy.optimizers import ASHA, GP, TPE, Optimizer, RandomSearch  # noqa: E402
from maggy.trial import Trial, TrialState  # noqa: E402

PROBLEMS = {p.name: p for p in (MLP7, GBM8, HARTMANN6_MIXED)}
#: The full budget of ASHA + TPE's rungs (1, 3, 9).
FULL_BUDGET = 9


@dataclass
class Run:
    """One run's figures: its best value, the trials it started of those asked (None: a compute
    budget, not a number of trials) and the seconds its reply path took per ended trial."""

    best: float = float("inf")
    started: int = 0
    asked: int | None = None
    replies: list[float] = field(default_factory=list)


def durations(seed: int, n: int) -> np.ndarray:
    """The durations of the trials of one seed, in the order they start: log-normal, median 1."""
    return np.random.default_rng(10_000 + seed).lognormal(0.0, 0.5, size=n)


def fidelity(problem: Problem, params: dict[str, Any], budget: float) -> float:
    """The problem's value after ``budget`` of ``FULL_BUDGET``: the final value plus a gap that
    closes with the budget, larger for some points than others (so that the ranks of a low rung
    foretell the final ones only roughly)."""
    slow = zlib.crc32(repr(sorted(params.items())).encode()) % 1000 / 1000.0
    return problem.objective(params) + 0.1 * (1.0 - (budget / FULL_BUDGET) ** 0.5) * (0.5 + slow)


def simulate(optimizer: Optimizer, problem: Problem, trials: int, workers: int, seed: int,
             compute: float | None = None) -> Run:
    """``optimizer`` with ``workers`` workers, asked for ``trials`` trials; with ``compute``, a
    multi-fidelity run that may spend that much trial time (its new trials bounded by ``trials``)."""
    multi = compute is not None
    optimizer.setup(problem.searchspace, direction="min", seed=seed, num_trials=trials)
    sched = Scheduler(optimizer, NoStopping(), total=trials, direction="min")
    base = durations(seed, trials + workers)
    cost: dict[str, float] = {}  # trial id -> its duration at the full budget
    reached: dict[str, float] = {}  # trial id -> the budget its latest run reached
    running: list[tuple[float, int, int, Trial]] = []
    waiting: list[int] = []
    run = Run(asked=None if multi else trials)
    spent = 0.0

    def hand(worker: int, now: float) -> None:
        nonlocal spent
        if compute is not None and spent >= compute:
            return  # the compute is spent: the worker leaves
        trial = sched.next_trial(worker)
        if trial == "wait":
            waiting.append(worker)
        if not isinstance(trial, Trial):
            return
        length = cost.setdefault(trial.trial_id, float(base[len(cost) % len(base)]))
        if multi:
            length *= (trial.budget - reached.get(trial.trial_id, 0.0)) / FULL_BUDGET
        spent += length
        heapq.heappush(running, (now + length, len(run.replies) + len(running), worker, trial))

    for w in range(workers):
        hand(w, 0.0)
    while running:
        now, _, worker, trial = heapq.heappop(running)
        if multi:
            value = fidelity(problem, dict(trial.params), trial.budget)
            reached[trial.trial_id] = trial.budget
            if trial.budget >= FULL_BUDGET:
                run.best = min(run.best, problem.objective(dict(trial.params)))
        else:
            value = problem.objective(dict(trial.params))
            run.best = min(run.best, value)
        t0 = time.perf_counter()
        ended = sched.record_end(trial.trial_id, TrialState.FINALIZED, metric=value)
        hand(worker, now)  # the reply first, as the driver answers a FINAL
        run.replies.append(time.perf_counter() - t0)
        assert ended is not None
        sched.learn(ended)
        for w in waiting[:]:  # the workers that heard WAIT ask again
            waiting.remove(w)
            hand(w, now)
    run.started = sched.started
    return run


def optuna_tpe(problem: Problem, trials: int, workers: int, seed: int) -> Run:
    """Optuna 5's TPE with ``workers`` trials in flight (constant liar), on the simulator's clock."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True))
    dists = optuna_distributions(problem.searchspace)
    base = durations(seed, trials + workers)
    running: list[tuple[float, int, Any]] = []
    run = Run(asked=trials)

    def start(now: float) -> None:
        trial = study.ask(dists)
        heapq.heappush(running, (now + float(base[run.started]), run.started, trial))
        run.started += 1

    for _ in range(min(workers, trials)):
        start(0.0)
    while running:
        now, _, trial = heapq.heappop(running)
        value = problem.objective(trial.params)
        t0 = time.perf_counter()
        study.tell(trial, value)
        if run.started < trials:
            start(now)
        run.replies.append(time.perf_counter() - t0)
    run.best = float(study.best_value)
    return run


Runner = Callable[[Problem, int, int, int], Run]

CONTENDERS: dict[str, tuple[str, Runner]] = {
    "random": ("maggy random", lambda p, n, k, s: simulate(RandomSearch(), p, n, k, s)),
    "tpe": ("maggy TPE", lambda p, n, k, s: simulate(TPE(), p, n, k, s)),
    "gp": ("maggy GP", lambda p, n, k, s: simulate(GP(n_candidates=300, n_refine=1), p, n, k, s)),
    "asha-tpe": ("maggy ASHA + TPE", lambda p, n, k, s: simulate(
        ASHA(3, 1, FULL_BUDGET, sampler="tpe"), p, 4 * n, k, s, compute=float(durations(s, n).sum()))),
    "optuna-tpe": ("optuna TPE (liar)", optuna_tpe),
}


def table(problem: Problem, trials: int, seeds: range, workers: list[int], only: list[str]) -> None:
    one = workers[0]
    print(f"\n## {problem.name} ({len(problem.searchspace)} dimensions, minimum about {problem.optimum}), "
          f"{trials} trials: median best over {len(seeds)} seeds with k workers; optuna {optuna_version()}")
    print(f"{'contender':19}" + "".join(f"{f'k={k}':>9}" for k in workers)
          + "".join(f"{f'loss {k}':>9}" for k in workers[1:]) + "".join(f"{f'kept {k}':>8}" for k in workers[1:])
          + f"{'early':>7}{'reply p50':>10}{'p99 ms':>8}{'s/run':>7}")
    random: float | None = None
    for key in only:
        name, runner = CONTENDERS[key]
        t0 = time.perf_counter()
        runs = {k: [runner(problem, trials, k, s) for s in seeds] for k in workers}
        per_run = (time.perf_counter() - t0) / (len(seeds) * len(workers))
        med = {k: statistics.median(r.best for r in runs[k]) for k in workers}
        kept = [""] * len(workers[1:])
        if key == "random":
            random = med[one]
        elif random is not None and random != med[one]:
            kept = [f"{(random - med[k]) / (random - med[one]):8.0%}" for k in workers[1:]]
        everything = [r for k in workers for r in runs[k]]
        early = sum(r.asked is not None and r.started < r.asked for r in everything)
        replies = np.array([t for r in everything for t in r.replies]) * 1000
        print(f"{name:19}" + "".join(f"{med[k]:9.4f}" for k in workers)
              + "".join(f"{med[k] - med[one]:9.4f}" for k in workers[1:]) + "".join(f"{c:>8}" for c in kept)
              + f"{early:7d}{np.percentile(replies, 50):10.2f}{np.percentile(replies, 99):8.2f}{per_run:7.2f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, nargs="+", default=[20])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--problems", default="mlp7,gbm8", help=f"comma-separated, of {','.join(PROBLEMS)}")
    parser.add_argument("--only", default=",".join(CONTENDERS), help=f"comma-separated, of {','.join(CONTENDERS)} "
                        "(random first: the others' kept share is measured against it)")
    args = parser.parse_args()
    only = [c for c in CONTENDERS if c in args.only.split(",")]
    print("loss k: median best with k workers - with 1 (lower is better); kept k: (random's median best - the median "
          "best with k) / (random's - the median best with 1); early: runs that started fewer trials than asked")
    for name in args.problems.split(","):
        for trials in args.trials:
            table(PROBLEMS[name], trials, range(args.seeds), args.workers, only)


if __name__ == "__main__":
    main()
