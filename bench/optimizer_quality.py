"""Optimizer quality: maggy's optimizers against Optuna's, side by side, over many seeds.

    .venv/bin/python bench/optimizer_quality.py [--seeds 10] [--trials 100] [--only branin,...]
    .venv/bin/python bench/optimizer_quality.py --only mixed4,hartmann6-mixed --trials 40   # mixed spaces
    .venv/bin/python bench/optimizer_quality.py --only zdt1,zdt2,dtlz2   # several objectives (~3 min)
    .venv/bin/python bench/optimizer_quality.py --only warmstart         # warm starts (~30 s)

Black-box problems (Branin, Hartmann-6, and two mixed spaces: ``mixed4`` with a log-scaled
double, a double, an integer and a categorical, and ``hartmann6-mixed``): the median [quartiles]
of the best value found after 10, 25, 40, 50 and 100 trials (those up to ``--trials``), with
Optuna's TPE of whatever version is installed (printed in each header). Multi-fidelity problem
(an SGD classifier on scikit-learn's digits, trained epoch by epoch with ``partial_fit``,
validation error): the best error found against the epochs spent, as a fraction of what random
search spends on its trials at full budget, and how much budget ASHA and Hyperband need to reach
random search's final best. Stopping rules (30 trials of 20 steps of rising learning curves, the
same trials for each): the steps each median rule runs, beside Optuna's ``MedianPruner``, and
the best accuracy it keeps. Population-based training (a model whose best learning rate falls
during training): PBT's best accuracy beside random search with the same budget and the best
fixed learning rate there is. Several objectives (ZDT1 and ZDT2 on 10 dimensions, DTLZ2 with
three objectives on 7, all minimised): the hypervolume of the non-dominated set after 50 and 100
trials (reference (1.1, 11) for ZDT, whose f2 reaches 10; 1.1 on each objective for DTLZ2), of
maggy's multi-objective TPE and random search
beside Optuna's TPESampler and NSGAIISampler at their defaults, all measured by
``maggy.search.pareto.hypervolume``, and the ratio of maggy's TPE median to Optuna's. Warm starts
(``mixed4`` and ``hartmann6-mixed``): the best value after 5, 10 and 20 trials of a TPE run given
the 40 trials of an earlier run (``Optimizer.warm_start``; Optuna: ``study.add_trials``) against
a cold run with the same seed.
Everything runs in this process through the same scheduler the driver uses (no Spark), so the
figures measure the optimizers alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.problems import (  # noqa: E402
    BRANIN,
    DTLZ2,
    HARTMANN6,
    HARTMANN6_MIXED,
    LR_SCHEDULE_SPACE,
    MIXED4,
    ZDT1,
    ZDT2,
    LearningCurves,
    MultiProblem,
    Problem,
    lr_schedule_model,
)
from maggy import Searchspace  # noqa: E402
from maggy.earlystop import MedianStoppingRule, NoStopping  # noqa: E402
from maggy.engine.scheduler import run_sequential  # noqa: E402
from maggy.optimizers import ASHA, GP, PBT, TPE, Hyperband, Optimizer, RandomSearch  # noqa: E402
from maggy.search.pareto import hypervolume  # noqa: E402
from maggy.trial import TrialState  # noqa: E402

Curve = list[tuple[float, float]]  # (trials or budget spent, best so far), minimisation


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = np.percentile(xs, [25, 50, 75])
    return float(q[1]), float(q[0]), float(q[2])


def cell(xs: list[float]) -> str:
    """``median [q1, q3]``, as every table prints it."""
    med, q1, q3 = quartiles(xs)
    return f"{med:9.4f} [{q1:7.4f}, {q3:7.4f}]"


def best_at(curve: Curve, spent: float) -> float:
    vals = [b for s, b in curve if s <= spent]
    return vals[-1] if vals else float("inf")


# ---- maggy ------------------------------------------------------------------------------------

def maggy_curve(opt: Optimizer, sp: Searchspace, objective: Callable, trials: int, seed: int,
                cost: Callable[[float | None, float | None], float] = lambda b, prev: 1.0,
                warm: list[tuple[dict[str, Any], float]] | None = None) -> Curve:
    """Run ``opt`` sequentially; ``cost(budget, previous budget)`` is what one run spends. ``warm``:
    earlier ``(params, value)`` observations to warm-start it with (they are not in the curve)."""
    opt.setup(sp, direction="min", seed=seed, num_trials=trials)
    if warm:
        opt.warm_start(warm)
    curve: Curve = []
    spent, best = 0.0, float("inf")
    reached: dict[str, float] = {}

    def measured(params, budget, trial_id):
        nonlocal spent, best
        value = objective(params, budget, trial_id)
        spent += cost(budget, reached.get(trial_id))
        reached[trial_id] = budget
        best = min(best, value)
        curve.append((spent, best))
        return value

    run_sequential(measured, opt, NoStopping(), total=trials, direction="min")
    return curve


# ---- optuna -----------------------------------------------------------------------------------

def optuna_version() -> str:
    try:
        import optuna
    except ImportError:
        return "not installed"
    return optuna.__version__


def optuna_distributions(sp: Searchspace) -> dict[str, Any]:
    """Optuna's distribution of each dimension, as ``optuna_params`` suggests them."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    return {hp.name: FloatDistribution(hp.low, hp.high, log=hp.log) if hp.type == "DOUBLE"
            else IntDistribution(int(hp.low), int(hp.high), log=hp.log) if hp.type == "INTEGER"
            else CategoricalDistribution(list(hp.values)) for hp in sp}


def optuna_params(trial, sp: Searchspace) -> dict[str, Any]:
    out = {}
    for hp in sp:
        if hp.type == "DOUBLE":
            out[hp.name] = trial.suggest_float(hp.name, hp.low, hp.high, log=hp.log)
        elif hp.type == "INTEGER":
            out[hp.name] = trial.suggest_int(hp.name, int(hp.low), int(hp.high), log=hp.log)
        else:
            out[hp.name] = trial.suggest_categorical(hp.name, list(hp.values))
    return out


def optuna_curve(sampler_name: str, sp: Searchspace, objective: Callable, trials: int, seed: int,
                 pruner_name: str | None = None, epochs: int | None = None,
                 warm: list[tuple[dict[str, Any], float]] | None = None) -> Curve:
    """Optuna's study of ``trials`` trials; ``warm``: earlier ``(params, value)`` observations,
    added to the study as finished trials first (Optuna's own warm start; not in the curve)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = (optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
              "hyperband": optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs or 1,
                                                          reduction_factor=3),
              None: optuna.pruners.NopPruner()}[pruner_name]
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    distributions = optuna_distributions(sp)
    study.add_trials([optuna.trial.create_trial(params=p, distributions=distributions, value=v)
                      for p, v in warm or []])
    curve: Curve = []
    state = {"spent": 0.0, "best": float("inf")}

    def record(value: float, cost: float) -> None:
        state["spent"] += cost
        state["best"] = min(state["best"], value)
        curve.append((state["spent"], state["best"]))

    def obj(trial):
        params = optuna_params(trial, sp)
        if epochs is None:
            value = objective(params, None, str(trial.number))
            record(value, 1.0)
            return value
        value = float("inf")
        for epoch in range(1, epochs + 1):
            value = objective(params, epoch, str(trial.number))
            trial.report(value, epoch)
            if trial.should_prune():
                record(value, epoch)
                raise optuna.TrialPruned()
        record(value, epochs)
        return value

    study.optimize(obj, n_trials=trials)
    return curve


# ---- several objectives ----------------------------------------------------------------------

Values = list[tuple[float, ...]]  # every trial's objective values (all minimised), in the order they ran


def maggy_values(opt: Optimizer, problem: MultiProblem, trials: int, seed: int) -> Values:
    opt.setup(problem.searchspace, direction=["min"] * len(problem.reference), seed=seed, num_trials=trials)
    seen: Values = []

    def measured(params, budget, trial_id):
        values = tuple(float(v) for v in problem.objective(params))
        seen.append(values)
        return values

    run_sequential(measured, opt, NoStopping(), total=trials, direction="min")
    return seen


def optuna_values(sampler: Any, problem: MultiProblem, trials: int) -> Values:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=["minimize"] * len(problem.reference), sampler=sampler)
    seen: Values = []

    def obj(trial):
        values = tuple(float(v) for v in problem.objective(optuna_params(trial, problem.searchspace)))
        seen.append(values)
        return values

    study.optimize(obj, n_trials=trials)
    return seen


def volume_at(values: Values, n: int, reference: tuple[float, ...]) -> float:
    """Hypervolume of the non-dominated set of the first ``n`` trials, measured by maggy's
    ``hypervolume`` for every contender: the minimised values and the reference negated into its
    larger-is-better convention (points beyond the reference add nothing)."""
    return hypervolume([[-v for v in vs] for vs in values[:n]], reference=[-r for r in reference])


# ---- the multi-fidelity problem -----------------------------------------------------------------

class DigitsSGD:
    """Validation error of an SGD classifier on digits after ``budget`` epochs; resumable."""

    epochs = 27
    searchspace = Searchspace(alpha=("DOUBLE", [1e-7, 1e-1], "log"), eta0=("DOUBLE", [1e-5, 1.0], "log"),
                              learning_rate=("CATEGORICAL", ["constant", "invscaling", "adaptive"]),
                              loss=("CATEGORICAL", ["hinge", "log_loss", "modified_huber"]),
                              average=("CATEGORICAL", [False, True]))

    def __init__(self) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        x, y = load_digits(return_X_y=True)
        xt, xv, self.yt, self.yv = train_test_split(x, y, test_size=0.4, random_state=0)
        scaler = StandardScaler().fit(xt)
        self.xt, self.xv = scaler.transform(xt), scaler.transform(xv)
        self.classes = np.unique(y)
        self.models: dict[str, tuple[Any, int]] = {}

    def __call__(self, params: dict[str, Any], budget: float | None, key: str) -> float:
        from sklearn.linear_model import SGDClassifier

        budget = int(budget or self.epochs)
        model, done = self.models.get(key, (None, 0))
        if model is None or done > budget:
            model, done = SGDClassifier(random_state=0, **params), 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(done, budget):
                model.partial_fit(self.xt, self.yt, classes=self.classes)
        self.models[key] = (model, budget)
        return float(1.0 - model.score(self.xv, self.yv))


# ---- stopping rules ---------------------------------------------------------------------------

def maggy_stopping(policy, points: list[dict[str, Any]], curves: LearningCurves) -> tuple[int, float]:
    """(steps run, best final value) of ``policy`` on the trials at ``points``, in this order."""
    from maggy.optimizers import GridSearch
    sp = Searchspace(i=("DISCRETE", list(range(len(points)))))
    opt = GridSearch()
    opt.setup(sp, direction="max", seed=0)
    steps = 0

    def run(p, b, tid):
        nonlocal steps
        for value in curves(points[p["i"]]):
            steps += 1
            yield value

    trials = run_sequential(run, opt, policy, total=len(points), direction="max")
    return steps, max(t.metric for t in trials if t.state is TrialState.FINALIZED)


def optuna_stopping(points: list[dict[str, Any]], curves: LearningCurves, startup: int) -> tuple[int, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=startup))
    for p in points:
        study.enqueue_trial(p)
    steps = 0

    def obj(trial):
        nonlocal steps
        params = optuna_params(trial, curves.searchspace)
        value = float("nan")
        for step, value in enumerate(curves(params)):
            steps += 1
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(obj, n_trials=len(points))
    return steps, study.best_value


def stopping_table(seeds: range, trials: int, startup: int = 5) -> None:
    """Steps run and best accuracy of the median rules on the same trials, side by side."""
    curves = LearningCurves()
    contenders = {
        "maggy no stopping": lambda pts: maggy_stopping(NoStopping(), pts, curves),
        "maggy median (step-wise)": lambda pts: maggy_stopping(MedianStoppingRule(startup), pts, curves),
        "maggy median (run. avg)": lambda pts: maggy_stopping(MedianStoppingRule(startup, running_average=True),
                                                              pts, curves),
        "optuna MedianPruner": lambda pts: optuna_stopping(pts, curves, startup),
    }
    rows: dict[str, list[tuple[int, float]]] = {name: [] for name in contenders}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        points = [curves.searchspace.sample(rng) for _ in range(trials)]
        for name, fn in contenders.items():
            rows[name].append(fn(points))
    optuna_steps = statistics.median(s for s, _ in rows["optuna MedianPruner"])
    print(f"\n## median stopping rules on {trials} trials x {curves.steps} steps of rising learning curves "
          f"(the same trials for every rule; {startup} finished trials before a rule acts), "
          f"median over {len(seeds)} seeds")
    print(f"{'contender':26}{'steps run':>11}{'vs optuna':>11}{'best accuracy':>15}")
    for name, runs in rows.items():
        steps = statistics.median(s for s, _ in runs)
        best = statistics.median(b for _, b in runs)
        print(f"{name:26}{steps:11.0f}{steps / optuna_steps:11.2f}{best:15.4f}", flush=True)


# ---- population-based training -----------------------------------------------------------------

def schedule_table(seeds: range, population: int = 8, steps: int = 40) -> None:
    """PBT against random search and ASHA with the same budget, on a problem whose best learning
    rate falls during training, and against the best fixed learning rate there is."""
    def full(p, b, tid):  # a fixed learning rate for every step
        return lr_schedule_model(p, steps, tid, {})

    ceiling = max(full({"lr": lr}, None, "") for lr in np.geomspace(1e-3, 0.5, 5000))

    def best_final(trials):
        return max(t.metric for t in trials if t.metric is not None and (t.budget is None or t.budget == steps))

    def pbt(seed):
        opt = PBT(perturbation_interval=steps // 10, resource_max=steps)
        opt.setup(LR_SCHEDULE_SPACE, direction="max", seed=seed, num_trials=population)
        return best_final(run_sequential(lr_schedule_model, opt, NoStopping(), total=population,
                                         direction="max", checkpoints=True))

    def random(seed):
        opt = RandomSearch()
        opt.setup(LR_SCHEDULE_SPACE, direction="max", seed=seed)
        return best_final(run_sequential(full, opt, NoStopping(), total=population, direction="max"))

    contenders = {f"maggy PBT ({population} members)": pbt, f"maggy random ({population} x {steps})": random}
    print(f"\n## a learning rate that must fall during training: best accuracy after {population} x {steps} steps, "
          f"median [q1, q3] over {len(seeds)} seeds; the best fixed learning rate reaches {ceiling:.4f}")
    print(f"{'contender':26}{'best accuracy':>28}")
    for name, fn in contenders.items():
        print(f"{name:26}{cell([fn(s) for s in seeds]):>28}", flush=True)


# ---- the tables -------------------------------------------------------------------------------

def blackbox_table(problem: Problem, seeds: range, trials: int) -> None:
    def obj(p, b, t):
        return problem.objective(p)
    contenders: dict[str, Callable[[int], Curve]] = {
        "maggy random": lambda s: maggy_curve(RandomSearch(), problem.searchspace, obj, trials, s),
        "maggy TPE": lambda s: maggy_curve(TPE(), problem.searchspace, obj, trials, s),
        "maggy TPE (indep.)": lambda s: maggy_curve(TPE(multivariate=False), problem.searchspace, obj, trials, s),
        "maggy GP": lambda s: maggy_curve(GP(), problem.searchspace, obj, trials, s),
        "optuna TPESampler": lambda s: optuna_curve("tpe", problem.searchspace, obj, trials, s),
        "optuna RandomSampler": lambda s: optuna_curve("random", problem.searchspace, obj, trials, s),
    }
    marks = [m for m in (10, 25, 40, 50, 100) if m <= trials]
    print(f"\n## {problem.name} (minimum {problem.optimum}), best value after n trials, "
          f"median [q1, q3] over {len(seeds)} seeds; optuna {optuna_version()}")
    print(f"{'contender':22}" + "".join(f"{f'n={m}':>26}" for m in marks) + f"{'s/run':>8}")
    for name, fn in contenders.items():
        t0 = time.perf_counter()
        curves = [fn(s) for s in seeds]
        cells = [cell([best_at(c, m) for c in curves]) for m in marks]
        print(f"{name:22}" + "".join(f"{c:>26}" for c in cells) + f"{(time.perf_counter() - t0) / len(seeds):8.2f}",
              flush=True)


def multi_objective_table(problem: MultiProblem, seeds: range, trials: int) -> None:
    """Hypervolume after n trials of maggy's multi-objective TPE and random search, Optuna's TPE
    and NSGA-II, each at its default settings. maggy's GP (ParEGO) is left out: about 6 s a
    trial on ZDT1 over 100 trials, 10 minutes a run (2 cores shared with another job)."""
    import optuna

    contenders: dict[str, Callable[[int], Values]] = {
        "maggy TPE": lambda s: maggy_values(TPE(), problem, trials, s),
        "maggy random": lambda s: maggy_values(RandomSearch(), problem, trials, s),
        "optuna TPESampler": lambda s: optuna_values(optuna.samplers.TPESampler(seed=s), problem, trials),
        "optuna NSGAIISampler": lambda s: optuna_values(optuna.samplers.NSGAIISampler(seed=s), problem, trials),
    }
    marks = [m for m in (50, 100) if m <= trials] or [trials]
    print(f"\n## {problem.name} ({len(problem.reference)} objectives, {len(problem.searchspace)} dimensions, "
          f"minimised), hypervolume of the non-dominated set after n trials (reference {problem.reference}; "
          f"the whole front: {problem.front_volume:.4f}), median [q1, q3] over {len(seeds)} seeds; "
          f"optuna {optuna_version()}; maggy GP (ParEGO) left out: ~6 s a trial over 100 trials")
    print(f"{'contender':22}" + "".join(f"{f'n={m}':>26}" for m in marks) + f"{'s/run':>8}")
    medians: dict[str, list[float]] = {}
    for name, fn in contenders.items():
        t0 = time.perf_counter()
        runs = [fn(s) for s in seeds]
        volumes = [[volume_at(r, m, problem.reference) for r in runs] for m in marks]
        medians[name] = [statistics.median(v) for v in volumes]
        print(f"{name:22}" + "".join(f"{cell(v):>26}" for v in volumes)
              + f"{(time.perf_counter() - t0) / len(seeds):8.2f}", flush=True)
    ratios = [m / o if o else float("nan") for m, o in zip(medians["maggy TPE"], medians["optuna TPESampler"])]
    print(f"{'maggy TPE / optuna TPE':22}" + "".join(f"{f'{r:9.3f}':>26}" for r in ratios)
          + "   (ratio of the medians)", flush=True)


def warmstart_table(problem: Problem, seeds: range, trials: int = 20, earlier: int = 40) -> None:
    """A TPE run warm-started with an earlier experiment's results against a cold one with the
    same seed. The earlier experiment: ``earlier`` trials of maggy's TPE with another seed (seed +
    1000); maggy's warm run and Optuna's warm study (the trials added with ``study.add_trials``)
    get the same observations. Only the new run's trials count towards its best."""
    sp = problem.searchspace

    def obj(p, b, t):
        return problem.objective(p)

    def observations(seed: int) -> list[tuple[dict[str, Any], float]]:
        opt = TPE()
        opt.setup(sp, direction="min", seed=seed + 1000, num_trials=earlier)
        done = run_sequential(obj, opt, NoStopping(), total=earlier, direction="min")
        return [(dict(t.params), float(t.metric)) for t in done if t.state is TrialState.FINALIZED]

    prior = {s: observations(s) for s in seeds}
    contenders: dict[str, Callable[[int], Curve]] = {
        "maggy TPE warm": lambda s: maggy_curve(TPE(), sp, obj, trials, s, warm=prior[s]),
        "maggy TPE cold": lambda s: maggy_curve(TPE(), sp, obj, trials, s),
        "optuna TPE warm": lambda s: optuna_curve("tpe", sp, obj, trials, s, warm=prior[s]),
        "optuna TPE cold": lambda s: optuna_curve("tpe", sp, obj, trials, s),
    }
    marks = [m for m in (5, 10, 20) if m <= trials]
    print(f"\n## warm start on {problem.name} (minimum {problem.optimum}): best value after n trials of a new "
          f"TPE run, median [q1, q3] over {len(seeds)} seeds; warm: given the {earlier} trials of an earlier "
          f"maggy TPE run with another seed (its best: {cell([min(v for _, v in prior[s]) for s in seeds]).strip()}); "
          f"optuna {optuna_version()}")
    print(f"{'contender':22}" + "".join(f"{f'n={m}':>26}" for m in marks))
    for name, fn in contenders.items():
        curves = [fn(s) for s in seeds]
        print(f"{name:22}" + "".join(f"{cell([best_at(c, m) for c in curves]):>26}" for m in marks), flush=True)


def multifidelity_table(seeds: range, full_trials: int) -> None:
    problem = DigitsSGD()
    sp, R = problem.searchspace, problem.epochs
    full_budget = full_trials * R

    def resumed(budget, previous):  # a promoted trial continues from its checkpoint
        return budget - (previous or 0)

    def full(budget, previous):
        return R

    mf_trials = 3 * full_trials
    contenders: dict[str, Callable[[int], Curve]] = {
        "maggy random (27 ep)": lambda s: maggy_curve(RandomSearch(), sp, problem, full_trials, s, full),
        "maggy TPE (27 ep)": lambda s: maggy_curve(TPE(), sp, problem, full_trials, s, full),
        "maggy ASHA": lambda s: maggy_curve(ASHA(3, 1, R), sp, problem, mf_trials, s, resumed),
        "maggy Hyperband": lambda s: maggy_curve(Hyperband(3, 1, R), sp, problem, mf_trials, s, resumed),
        "maggy ASHA + TPE": lambda s: maggy_curve(ASHA(3, 1, R, sampler="tpe"), sp, problem, mf_trials, s, resumed),
        "optuna TPE+Median": lambda s: optuna_curve("tpe", sp, problem, mf_trials, s, "median", R),
        "optuna TPE+Hyperband": lambda s: optuna_curve("tpe", sp, problem, mf_trials, s, "hyperband", R),
        "optuna Random": lambda s: optuna_curve("random", sp, problem, full_trials, s, None, R),
    }
    fractions = (0.1, 1 / 3, 1.0)
    print(f"\n## digits SGD, validation error against epochs spent (random search: {full_trials} trials "
          f"x {R} epochs = {full_budget}), median [q1, q3] over {len(seeds)} seeds")
    print(f"{'contender':22}" + "".join(f"{f'{f:.0%} budget':>26}" for f in fractions)
          + f"{'to reach random':>18}")
    random_final: list[float] = []
    for name, fn in contenders.items():
        curves = [fn(s) for s in seeds]
        if not random_final:  # the first contender is random search
            random_final = [best_at(c, full_budget) for c in curves]
        cells = [cell([best_at(c, f * full_budget) for c in curves]) for f in fractions]
        need = [next((spent for spent, b in c if b <= goal), float("inf")) for c, goal in zip(curves, random_final)]
        reach = statistics.median(need) / full_budget
        reach_text = f"{reach:.0%}" if reach != float("inf") else "never"
        print(f"{name:22}" + "".join(f"{c:>26}" for c in cells) + f"{reach_text:>18}", flush=True)
    print("'to reach random': median over seeds of the epochs spent until the best error is as low as "
          "random search's final best on the same seed, as a share of random search's budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--mf-trials", type=int, default=30, help="full-budget trials of random search")
    parser.add_argument("--only", default="branin,hartmann6,mixed4,hartmann6-mixed,digits,median,pbt,"
                                          "zdt1,zdt2,dtlz2,warmstart",
                        help="comma-separated tables to print, e.g. mixed4,hartmann6-mixed or zdt1,zdt2,dtlz2,warmstart")
    args = parser.parse_args()
    seeds = range(args.seeds)
    only = set(args.only.split(","))
    for problem in (BRANIN, HARTMANN6, MIXED4, HARTMANN6_MIXED):
        if problem.name in only:
            blackbox_table(problem, seeds, args.trials)
    if "digits" in only:
        multifidelity_table(seeds, args.mf_trials)
    if "median" in only:
        stopping_table(seeds, 30)
    if "pbt" in only:
        schedule_table(seeds)
    for mo_problem in (ZDT1, ZDT2, DTLZ2):
        if mo_problem.name in only:
            multi_objective_table(mo_problem, seeds, args.trials)
    if "warmstart" in only:
        for problem in (MIXED4, HARTMANN6_MIXED):
            warmstart_table(problem, seeds)


if __name__ == "__main__":
    main()
