"""Parallel quality: what k workers cost each optimizer's search, in virtual time, without Spark.

    .venv/bin/python bench/parallel_quality.py                       # the full table (~? min on 2 cores)
    .venv/bin/python bench/parallel_quality.py --seeds 5 --workers 1 2 --only tpe,optuna-tpe   # smaller

A simulator drives the real optimizers through the real :class:`~maggy.engine.scheduler.Scheduler`
in the driver's order (a run's end is recorded, its worker is handed the next trial, then the
optimizer learns and a suggestion is prepared ahead), with ``k`` workers and trial durations
drawn from a log-normal distribution (the same draws for every contender of a seed), on a
virtual clock: a table runs in minutes. Optuna's TPE (``constant_liar=True``, its ask/tell API
with the ``k`` trials in flight) runs on the same clock and durations, a thread that ends a trial
telling its result and asking for the next one. ASHA + TPE spends the compute of ``--trials``
full-budget trials (its trials cost their budget) and counts the full-budget runs.

Figures per problem: the median best value over the seeds for 1, 2, 4 and 8 workers, the loss
from parallelism (the median best with k workers minus that with one), and the share of its
one-worker gain over random search (random's median best minus its own) that each keeps with k.
"""

from __future__ import annotations

import argparse
import heapq
import os
import statistics
import sys
import time
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
#: Rungs of ASHA + TPE: budgets 1, 3, 9 of a full 9.
FULL_BUDGET = 9


def durations(seed: int, n: int, sigma: float = 0.5) -> np.ndarray:
    """The durations of the trials of one seed, in the order they start: log-normal, median 1."""
    return np.random.default_rng(10_000 + seed).lognormal(0.0, sigma, size=n)


def fidelity(problem: Problem, params: dict[str, Any], budget: float) -> float:
    """The problem's value after ``budget`` of ``FULL_BUDGET``: the final value plus a gap that
    closes with the budget, larger for some points than others (so that the ranks of a low rung
    foretell the final ones only roughly)."""
    final = problem.objective(params)
    slow = (hash(tuple(sorted((k, str(v)) for k, v in params.items()))) % 1000) / 1000.0
    return final + 0.1 * (1.0 - (budget / FULL_BUDGET) ** 0.5) * (0.5 + slow)


def simulate(optimizer: Optimizer, problem: Problem, trials: int, workers: int, seed: int,
             compute: float | None = None) -> float:
    """The best value ``optimizer`` finds with ``workers`` workers; ``compute``: the trial budget a
    multi-fidelity run may spend (its new trials are then as many as it can start)."""
    multi = optimizer.resumes_trials
    optimizer.setup(problem.searchspace, direction="min", seed=seed, num_trials=trials)
    sched = Scheduler(optimizer, NoStopping(), total=trials, direction="min")
    base = durations(seed, trials * (3 if multi else 1) + workers)
    cost: dict[str, float] = {}  # trial id -> its duration at the full budget
    reached: dict[str, float] = {}  # trial id -> the budget its latest run reached
    running: list[tuple[float, int, int, Trial]] = []
    waiting: list[int] = []
    spent, best, order = 0.0, float("inf"), 0

    def hand(worker: int, now: float) -> None:
        nonlocal order, spent
        if compute is not None and spent >= compute:
            return  # the compute is spent: the worker leaves
        trial = sched.next_trial(worker)
        if trial == "wait":
            waiting.append(worker)
            return
        if not isinstance(trial, Trial):
            return
        length = cost.setdefault(trial.trial_id, float(base[len(cost) % len(base)]))
        if multi:
            budget = float(trial.budget or FULL_BUDGET)
            length *= (budget - reached.get(trial.trial_id, 0.0)) / FULL_BUDGET
        spent += length
        order += 1
        heapq.heappush(running, (now + length, order, worker, trial))

    for w in range(workers):
        hand(w, 0.0)
    while running:
        now, _, worker, trial = heapq.heappop(running)
        if multi:
            value = fidelity(problem, dict(trial.params), float(trial.budget or FULL_BUDGET))
            reached[trial.trial_id] = float(trial.budget or FULL_BUDGET)
            if trial.budget is None or trial.budget >= FULL_BUDGET:
                best = min(best, problem.objective(dict(trial.params)))
        else:
            value = problem.objective(dict(trial.params))
            best = min(best, value)
        ended = sched.record_end(trial.trial_id, TrialState.FINALIZED, metric=value)
        assert ended is not None
        hand(worker, now)  # the reply first, as the driver answers a FINAL
        sched.learn(ended)
        for w in waiting[:]:  # the workers that heard WAIT ask again
            waiting.remove(w)
            hand(w, now)
    return best


def optuna_tpe(problem: Problem, trials: int, workers: int, seed: int) -> float:
    """Optuna 5's TPE with ``workers`` trials in flight (constant liar), on the simulator's clock."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True))
    dists = optuna_distributions(problem.searchspace)
    base = durations(seed, trials + workers)
    running: list[tuple[float, int, Any]] = []
    started = 0

    def start(now: float) -> None:
        nonlocal started
        trial = study.ask(dists)
        heapq.heappush(running, (now + float(base[started]), started, trial))
        started += 1

    for _ in range(min(workers, trials)):
        start(0.0)
    while running:
        now, _, trial = heapq.heappop(running)
        study.tell(trial, problem.objective(trial.params))
        if started < trials:
            start(now)
    return float(study.best_value)


Runner = Callable[[Problem, int, int, int], float]

CONTENDERS: dict[str, tuple[str, Runner]] = {
    "random": ("maggy random", lambda p, n, k, s: simulate(RandomSearch(), p, n, k, s)),
    "tpe": ("maggy TPE", lambda p, n, k, s: simulate(TPE(), p, n, k, s)),
    "gp": ("maggy GP", lambda p, n, k, s: simulate(GP(), p, n, k, s)),
    "asha-tpe": ("maggy ASHA + TPE", lambda p, n, k, s: simulate(
        ASHA(3, 1, FULL_BUDGET, sampler="tpe"), p, 4 * n, k, s, compute=float(durations(s, n).sum()))),
    "optuna-tpe": ("optuna TPE (liar)", optuna_tpe),
}


def table(problem: Problem, trials: int, seeds: range, workers: list[int], only: list[str]) -> None:
    print(f"\n## {problem.name} ({len(problem.searchspace)} dimensions, minimum about {problem.optimum}), "
          f"{trials} trials: median best over {len(seeds)} seeds with k workers; optuna {optuna_version()}")
    medians: dict[str, dict[int, float]] = {}
    header = f"{'contender':20}" + "".join(f"{f'k={k}':>10}" for k in workers)
    header += "".join(f"{f'loss k={k}':>11}" for k in workers[1:]) + "".join(f"{f'kept k={k}':>11}" for k in workers)
    print(header + f"{'s/run':>8}")
    for key in only:
        name, run = CONTENDERS[key]
        t0 = time.perf_counter()
        medians[key] = {k: statistics.median(run(problem, trials, k, s) for s in seeds) for k in workers}
        per_run = (time.perf_counter() - t0) / (len(seeds) * len(workers))
        m = medians[key]
        random = medians.get("random", {}).get(workers[0])
        kept = [(random - m[k]) / (random - m[workers[0]]) if random is not None and random != m[workers[0]]
                else float("nan") for k in workers]
        print(f"{name:20}" + "".join(f"{m[k]:10.4f}" for k in workers)
              + "".join(f"{m[k] - m[workers[0]]:11.4f}" for k in workers[1:])
              + "".join(f"{x:11.0%}" for x in kept) + f"{per_run:8.2f}", flush=True)
    print(f"loss k: the median best with k workers minus that with {workers[0]} (lower is better); kept k: "
          f"(random's median best - the median best with k) / (random's - the median best with {workers[0]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--problems", default="mlp7,gbm8", help=f"comma-separated, of {','.join(PROBLEMS)}")
    parser.add_argument("--only", default=",".join(CONTENDERS), help=f"comma-separated, of {','.join(CONTENDERS)}")
    args = parser.parse_args()
    only = [c for c in CONTENDERS if c in args.only.split(",")]
    for name in args.problems.split(","):
        for trials in args.trials:
            table(PROBLEMS[name], trials, range(args.seeds), args.workers, only)


if __name__ == "__main__":
    main()
