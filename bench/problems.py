"""Benchmark problems shared by the optimizer benchmark and the quality tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from maggy import Searchspace


@dataclass(frozen=True)
class Problem:
    name: str
    searchspace: Searchspace
    objective: Callable[[dict[str, Any]], float]
    optimum: float
    direction: str = "min"


def branin(p: dict[str, Any]) -> float:
    x1, x2 = p["x1"], p["x2"]
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p: dict[str, Any]) -> float:
    x = np.array([p[f"x{i}"] for i in range(1, 7)])
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


BRANIN = Problem("branin", Searchspace(x1=("DOUBLE", [-5, 10]), x2=("DOUBLE", [0, 15])), branin, 0.397887)
HARTMANN6 = Problem("hartmann6", Searchspace(**{f"x{i}": ("DOUBLE", [0, 1]) for i in range(1, 7)}),
                    hartmann6, -3.32237)


# a made-up training run over four kinds of dimension: the best learning rate depends on the
# momentum (through the effective step lr / (1 - 0.95 momentum)) and on the activation
_ACT = {"relu": (0.0, -3.0), "gelu": (0.05, -3.5), "tanh": (0.3, -2.0), "sigmoid": (0.8, -1.5)}


def mixed4(p: dict[str, Any]) -> float:
    offset, best_step = _ACT[p["act"]]
    step = math.log10(p["lr"]) - math.log10(1 - 0.95 * p["momentum"])
    return (offset + 0.15 * (step - best_step) ** 2 + 0.5 * (p["momentum"] - 0.9) ** 2
            + 0.1 * math.log2(p["layers"] / 6) ** 2)


MIXED4 = Problem("mixed4", Searchspace(lr=("DOUBLE", [1e-5, 1.0], "log"), momentum=("DOUBLE", [0.0, 1.0]),
                                       layers=("INTEGER", [1, 16]), act=("CATEGORICAL", list(_ACT))),
                 mixed4, 0.0)


def hartmann6_mixed(p: dict[str, Any]) -> float:
    """Hartmann-6 with x1 on a log scale, x5 an integer (tenths) and x6 a categorical."""
    return hartmann6({**p, "x5": p["x5"] / 10, "x6": float(p["x6"])})


HARTMANN6_MIXED = Problem(
    "hartmann6-mixed",
    Searchspace(x1=("DOUBLE", [0.01, 1.0], "log"), **{f"x{i}": ("DOUBLE", [0, 1]) for i in range(2, 5)},
                x5=("INTEGER", [0, 10]), x6=("CATEGORICAL", ["0.0", "0.25", "0.5", "0.75", "1.0"])),
    hartmann6_mixed, -3.13742)


class LearningCurves:
    """Validation accuracy per epoch of a made-up model: rising curves that level off, at a
    height and speed set by the learning rate and width, with a little noise that repeats for the
    same point. For stopping rules, which see the curves one step at a time."""

    searchspace = Searchspace(lr=("DOUBLE", [1e-4, 1.0], "log"), width=("INTEGER", [16, 256], "log"))

    def __init__(self, steps: int = 20, noise: float = 0.005) -> None:
        self.steps, self.noise = steps, noise

    def __call__(self, p: dict[str, Any]) -> list[float]:
        lr, width = p["lr"], p["width"]
        plateau = 0.95 - 0.08 * (math.log10(lr) + 2) ** 2 - 0.05 * (math.log2(256 / width) / 4) ** 2
        rate = 0.05 + 0.6 * min(lr, 0.3) ** 0.5
        rng = np.random.default_rng(abs(hash((round(lr, 12), width))) % 2**32)
        return [plateau * (1 - math.exp(-rate * (s + 1))) + self.noise * rng.standard_normal()
                for s in range(self.steps)]


def lr_schedule_model(params: dict[str, Any], budget: float | None, trial_id: str, ckpt: dict[str, Any],
                      steps: int = 40) -> float:
    """A made-up model whose best learning rate falls during training: a large one makes progress
    fast, but the final accuracy pays for the learning rate in use at the end. No fixed learning
    rate reaches 0.806 after 40 steps; a falling schedule gets close to 1. Resumable: ``ckpt``
    stands for the checkpoint directory (see ``run_sequential(..., checkpoints=True)``)."""
    p, step = ckpt.get("p", 0.0), ckpt.get("step", 0)
    while step < (budget or steps):
        p += params["lr"] * (1 - p)
        step += 1
    ckpt.update(p=p, step=step)
    return p - 2.0 * params["lr"]


LR_SCHEDULE_SPACE = Searchspace(lr=("DOUBLE", [1e-3, 0.5], "log"))


# ---- several objectives -----------------------------------------------------------------------

@dataclass(frozen=True)
class MultiProblem:
    """Several objectives, all minimised: ``objective`` returns a tuple of one value per
    objective. ``reference`` is the hypervolume's reference point (points beyond it on any
    objective add nothing)."""

    name: str
    searchspace: Searchspace
    objective: Callable[[dict[str, Any]], tuple[float, ...]]
    reference: tuple[float, ...]
    #: the hypervolume (below ``reference``) of the whole Pareto front: what a perfect run reaches
    front_volume: float


def _unit_cube(n: int) -> Searchspace:
    return Searchspace(**{f"x{i}": ("DOUBLE", [0.0, 1.0]) for i in range(1, n + 1)})


def _vector(p: dict[str, Any]) -> np.ndarray:
    return np.array([p[f"x{i}"] for i in range(1, len(p) + 1)], dtype=float)


def zdt1(p: dict[str, Any]) -> tuple[float, float]:
    """ZDT1 (Zitzler, Deb and Thiele, 2000): a convex front, f2 = 1 - sqrt(f1) where x2..xn = 0."""
    x = _vector(p)
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(x[1:].sum()) / (len(x) - 1)
    return f1, g * (1.0 - math.sqrt(f1 / g))


def zdt2(p: dict[str, Any]) -> tuple[float, float]:
    """ZDT2: a concave front, f2 = 1 - f1^2 where x2..xn = 0."""
    x = _vector(p)
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(x[1:].sum()) / (len(x) - 1)
    return f1, g * (1.0 - (f1 / g) ** 2)


def dtlz2(p: dict[str, Any]) -> tuple[float, float, float]:
    """DTLZ2 with three objectives (Deb et al., 2002): the front is the positive eighth of the unit
    sphere, where the last k = n - 2 coordinates are 0.5."""
    x = _vector(p)
    g = float(((x[2:] - 0.5) ** 2).sum())
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    return ((1 + g) * math.cos(a) * math.cos(b), (1 + g) * math.cos(a) * math.sin(b), (1 + g) * math.sin(a))


# the fronts' hypervolumes: the reference box less what lies under the front (1/3 for ZDT1, 2/3
# for ZDT2, an eighth of the unit ball for DTLZ2). ZDT's f2 reaches 10 away from the front, and
# within 100 trials no tuner gets inside the usual (1.1, 1.1) (every median was 0): the reference
# is (1.1, 11), the box over every value f2 takes, so that the table tells the tuners apart
ZDT1 = MultiProblem("zdt1", _unit_cube(10), zdt1, (1.1, 11.0), 1.1 * 11.0 - 1 / 3)
ZDT2 = MultiProblem("zdt2", _unit_cube(10), zdt2, (1.1, 11.0), 1.1 * 11.0 - 2 / 3)
DTLZ2 = MultiProblem("dtlz2", _unit_cube(7), dtlz2, (1.1, 1.1, 1.1), 1.1 ** 3 - math.pi / 6)


# ---- problems shaped like real tuning (bench/parallel_quality.py) ---------------------------------

def mlp7(p: dict[str, Any]) -> float:
    """A made-up validation error of a network over LCBench's seven dimensions (4 continuous,
    the learning rate log-scaled; 3 integers, the batch size and the width log-scaled). The best
    learning rate grows with the batch and falls with the momentum; the regularisation that
    helps (weight decay and dropout) grows with the capacity (layers x log width), and too
    little capacity underfits."""
    lr, batch, momentum = p["learning_rate"], p["batch_size"], p["momentum"]
    step = math.log10(lr / (1.0 - 0.9 * momentum)) - (-1.8 + 0.6 * math.log10(batch / 64))
    capacity = p["num_layers"] * math.log2(p["max_units"])
    regularisation = 20.0 * p["weight_decay"] + p["max_dropout"]
    return (0.08 + 0.06 * step ** 2 + 0.2 * (momentum - 0.9) ** 2 + 0.004 * math.log2(batch / 48) ** 2
            + 0.15 * math.exp(-capacity / 8.0) + 0.3 * (regularisation - 0.015 * capacity) ** 2
            + 0.01 * math.sin(3.0 * math.log10(lr)) * math.cos(2.0 * p["max_dropout"]))


MLP7 = Problem("mlp7", Searchspace(
    batch_size=("INTEGER", [16, 512], "log"), learning_rate=("DOUBLE", [1e-4, 1e-1], "log"),
    momentum=("DOUBLE", [0.1, 0.99]), weight_decay=("DOUBLE", [1e-5, 0.1]), num_layers=("INTEGER", [1, 5]),
    max_units=("INTEGER", [64, 1024], "log"), max_dropout=("DOUBLE", [0.0, 1.0])), mlp7, 0.0703)


def gbm8(p: dict[str, Any]) -> float:
    """A made-up validation loss of gradient-boosted trees over eight dimensions (the rounds a
    log-scaled integer, the depth an integer, the booster a category): what counts is the
    learning rate times the rounds, the depth against the minimum child weight, and the
    sampling shares."""
    work = math.log10(p["eta"] * p["n_estimators"])
    depth = p["max_depth"] - (3.0 + 1.5 * math.log10(p["min_child_weight"]))
    return (0.2 + 0.05 * (work - 1.3) ** 2 + 0.004 * depth ** 2 + 0.15 * (p["subsample"] - 0.8) ** 2
            + 0.1 * (p["colsample_bytree"] - 0.6) ** 2 + 0.01 * (math.log10(p["reg_lambda"]) - 0.3) ** 2
            + 0.003 * math.log10(p["n_estimators"]) + (0.0 if p["booster"] == "gbtree" else 0.02))


GBM8 = Problem("gbm8", Searchspace(
    eta=("DOUBLE", [1e-3, 1.0], "log"), n_estimators=("INTEGER", [10, 2000], "log"), max_depth=("INTEGER", [1, 12]),
    min_child_weight=("DOUBLE", [1.0, 100.0], "log"), subsample=("DOUBLE", [0.5, 1.0]),
    colsample_bytree=("DOUBLE", [0.3, 1.0]), reg_lambda=("DOUBLE", [1e-3, 10.0], "log"),
    booster=("CATEGORICAL", ["gbtree", "dart"])), gbm8, 0.2039)
