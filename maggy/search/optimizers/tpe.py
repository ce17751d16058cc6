"""Tree-structured Parzen Estimator (Bergstra et al., NeurIPS 2011), in numpy.

Finished trials are split into the best fraction (``l``) and the rest (``g``); each dimension
gets a Parzen estimator of both, and the next value of each dimension is the candidate drawn
from ``l`` with the largest ``l(x) / g(x)``. Trials still running count as bad results
(constant liar), so parallel workers do not all probe the same spot.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from maggy.search.optimizers.base import Answer, Optimizer, Suggestion
from maggy.search.optimizers.encoding import from_unit, to_unit
from maggy.search.searchspace import RANGE_TYPES, Hyperparameter, Searchspace
from maggy.trial import FrozenTrial
from maggy.validation import check_int, check_number

_SQRT2 = math.sqrt(2.0)


def _erf(x: np.ndarray) -> np.ndarray:
    """Vectorised error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7)."""
    s = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-x * x))


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(x / _SQRT2))


class _Parzen1D:
    """A mixture of Gaussians on [0, 1], truncated there, around the observations and a wide prior."""

    def __init__(self, points: np.ndarray, prior_weight: float) -> None:
        mus = np.append(points, 0.5)
        order = np.argsort(mus)
        sorted_mus = mus[order]
        # the gap to each neighbour; the outermost points look only inwards, not at the bounds
        gaps = np.diff(sorted_mus)
        left = np.concatenate([[0.0], gaps])
        right = np.concatenate([gaps, [0.0]])
        sigma_sorted = np.maximum(left, right)
        sigmas = np.empty_like(mus)
        sigmas[order] = sigma_sorted
        n = len(points)
        sigmas = np.clip(sigmas, 1.0 / min(100.0, 1.0 + n), 1.0)
        sigmas[-1] = 1.0  # the prior component
        self.mus, self.sigmas = mus, sigmas
        self.weights = np.append(np.ones(n), prior_weight)
        self.weights /= self.weights.sum()
        self.mass = _norm_cdf((1.0 - mus) / sigmas) - _norm_cdf((0.0 - mus) / sigmas)

    def sample(self, rng: np.random.Generator, k: int) -> np.ndarray:
        comp = rng.choice(len(self.mus), size=k, p=self.weights)
        out = np.empty(k)
        todo = np.arange(k)
        for _ in range(100):  # rejection sampling into [0, 1]
            draws = rng.normal(self.mus[comp[todo]], self.sigmas[comp[todo]])
            ok = (draws >= 0.0) & (draws <= 1.0)
            out[todo[ok]] = draws[ok]
            todo = todo[~ok]
            if not len(todo):
                break
        out[todo] = np.clip(rng.uniform(size=len(todo)), 0.0, 1.0)
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        z = (x[:, None] - self.mus[None, :]) / self.sigmas[None, :]
        dens = np.exp(-0.5 * z * z) / (self.sigmas * math.sqrt(2 * math.pi) * self.mass)
        return np.log(np.maximum(dens @ self.weights, 1e-300))


def _categorical_probs(indices: np.ndarray, k: int, prior_weight: float) -> np.ndarray:
    counts = np.bincount(indices.astype(int), minlength=k).astype(float) + prior_weight
    return counts / counts.sum()


class TPESampler:
    """Proposes points from observed ``(params, score)`` pairs, larger scores being better.

    Used by :class:`TPE` and, fitted on a rung's results, by model-based ASHA and Hyperband.
    """

    def __init__(self, n_candidates: int = 24, gamma: float = 0.1, max_good: int = 25,
                 prior_weight: float = 1.0, multivariate: bool = False) -> None:
        self.multivariate = multivariate
        self.n_candidates = check_int("n_candidates", n_candidates, low=1)
        self.gamma = check_number("gamma", gamma, low=0, strict=True)
        self.max_good = check_int("max_good", max_good, low=1)
        self.prior_weight = check_number("prior_weight", prior_weight, low=0, strict=True)

    def split(self, n: int) -> int:
        return max(1, min(math.ceil(self.gamma * n), self.max_good))

    def sample(self, searchspace: Searchspace, observations: Sequence[tuple[dict[str, Any], float]],
               rng: np.random.Generator) -> dict[str, Any]:
        ranked = sorted(observations, key=lambda o: -o[1])
        n_good = self.split(len(ranked))
        good, bad = [p for p, _ in ranked[:n_good]], [p for p, _ in ranked[n_good:]]
        dims = [self._dimension(hp, [p[hp.name] for p in good], [p[hp.name] for p in bad], rng)
                for hp in searchspace]
        if self.multivariate:
            score = sum(ratio for _, ratio in dims)
            pick = int(np.argmax(score))
            return {hp.name: values[pick] for hp, (values, _) in zip(searchspace, dims)}
        return {hp.name: values[int(np.argmax(ratio))] for hp, (values, ratio) in zip(searchspace, dims)}

    def _dimension(self, hp: Hyperparameter, good: list, bad: list,
                   rng: np.random.Generator) -> tuple[list, np.ndarray]:
        """Candidates drawn from ``l`` for one dimension, and their log ``l/g``."""
        if hp.type in RANGE_TYPES:
            lo = _Parzen1D(np.array([to_unit(hp, v) for v in good]), self.prior_weight)
            hi = _Parzen1D(np.array([to_unit(hp, v) for v in bad]), self.prior_weight)
            cand = lo.sample(rng, self.n_candidates)
            return [from_unit(hp, c) for c in cand], lo.log_pdf(cand) - hi.log_pdf(cand)
        k = len(hp.values)
        index = {(type(v), v): i for i, v in enumerate(hp.values)}
        pl = _categorical_probs(np.array([index[(type(v), v)] for v in good]), k, self.prior_weight)
        pg = _categorical_probs(np.array([index[(type(v), v)] for v in bad]), k, self.prior_weight)
        cand = rng.choice(k, size=self.n_candidates, p=pl)
        return [hp.values[int(c)] for c in cand], np.log(pl[cand]) - np.log(pg[cand])


class TPE(Optimizer):
    """Bayesian optimisation with Parzen estimators; random for the first ``n_startup`` trials.

    >>> from maggy import Searchspace
    >>> opt = TPE(n_startup=2)
    >>> opt.setup(Searchspace(x=("DOUBLE", [0, 1])), direction="min", seed=0)
    >>> 0 <= opt.ask(pending=[]).params["x"] <= 1
    True
    """

    def __init__(self, n_startup: int = 10, n_candidates: int = 24, gamma: float = 0.1,
                 multivariate: bool = False) -> None:
        self.n_startup = check_int("n_startup", n_startup, low=1)
        self.sampler = TPESampler(n_candidates=n_candidates, gamma=gamma, multivariate=multivariate)
        self._done: list[FrozenTrial] = []

    def reset(self) -> None:
        self._done = []

    def ask(self, pending: Sequence[FrozenTrial]) -> Answer:
        obs = self.observations(self._done)
        if len(obs) < self.n_startup:
            return Suggestion(self.searchspace.sample(self.rng))
        worst = min(score for _, score in obs)
        liars = [(dict(t.params), worst) for t in pending]
        return Suggestion(self.sampler.sample(self.searchspace, obs + liars, self.rng))

    @property
    def learns(self) -> bool:
        return True

    def tell(self, trial: FrozenTrial) -> None:
        self._done.append(trial)
