"""Gaussian-process Bayesian optimisation with expected improvement.

A Matern-5/2 GP (scikit-learn) models the scores of finished trials in the unit cube
(categoricals one-hot). Expected improvement is maximised over fresh random points of the
searchspace and perturbations of the best trials, and the best few candidates are refined with
L-BFGS-B in their continuous coordinates. Running trials enter as "kriging believers": their
predicted mean is added as if observed (a fantasy), so parallel workers spread out. A point
already tried or running is never proposed: the best candidate that is new wins, and the fresh
random candidates always hold one, so the search cannot stall on a maximum it has visited. With
several objectives each ask maximises a random Chebyshev scalarisation of them (ParEGO), so the
asks spread along the front. In a conditional searchspace an inactive dimension is imputed with a
fixed value outside its range (:class:`~maggy.search.optimizers.encoding.VectorEncoder`), in the
observations and in every candidate, and left out of the point proposed.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from maggy.search.optimizers.base import Answer, Optimizer, Suggestion
from maggy.search.optimizers.encoding import VectorEncoder
from maggy.search.pareto import chebyshev
from maggy.trial import FrozenTrial
from maggy.validation import check_int, check_number


def _key(params: Mapping[str, Any]) -> tuple:
    """A point as the scheduler tells points apart (equal values, in name order)."""
    return tuple(sorted(params.items()))


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float, xi: float) -> np.ndarray:
    """EI of maximisation over ``best`` with exploration margin ``xi``."""
    from scipy.stats import norm

    sigma = np.maximum(sigma, 1e-12)
    gain = mu - best - xi
    z = gain / sigma
    return gain * norm.cdf(z) + sigma * norm.pdf(z)


class GP(Optimizer):
    """Expected improvement under a Gaussian process; random for the first ``n_startup`` trials
    started (default: the dimensions + 2, at least 5), then modelled on the results in, with the
    running trials as fantasies. A point prepared ahead is never asked for again: an ask takes
    0.2 to 1 s, which the reply path would wait for, and the fantasy of the run that ended
    stood for its result.

    >>> from maggy import Searchspace
    >>> opt = GP(n_startup=3)
    >>> opt.setup(Searchspace(x=("DOUBLE", [0, 1])), direction="max", seed=0)
    >>> 0 <= opt.ask(pending=[]).params["x"] <= 1
    True
    """

    def __init__(self, n_startup: int | None = None, n_candidates: int = 1000, n_refine: int = 3,
                 xi: float = 0.01) -> None:
        self.n_startup = check_int("n_startup", n_startup, low=1, allow_none=True)
        self.n_candidates = check_int("n_candidates", n_candidates, low=1)
        self.n_refine = check_int("n_refine", n_refine, low=0)
        self.xi = check_number("xi", xi, low=0)
        self._done: list[FrozenTrial] = []

    multi_objective = True

    def reset(self) -> None:
        self.encoder = VectorEncoder(self.searchspace)
        self._done = []

    @property
    def learns(self) -> bool:
        return True

    def tell(self, trial: FrozenTrial) -> None:
        self._done.append(trial)

    def ask(self, pending: Sequence[FrozenTrial]) -> Answer:
        obs = self.observations(self._done)
        startup = self.n_startup or max(5, len(self.searchspace) + 2)
        if len(obs) < 2 or len(obs) + len(pending) < startup:  # the first trials started, as TPE counts them
            return Suggestion(self.searchspace.sample(self.rng))
        x = np.array([self.encoder.encode(p) for p, _ in obs])
        y = np.array([s for _, s in obs], dtype=float)
        if y.ndim == 2:  # several objectives: this ask's random trade-off between them
            y = chebyshev(y, self.rng.dirichlet(np.ones(y.shape[1])))
        gp = self._fit(x, y, optimize=True)
        if pending:
            xp = np.array([self.encoder.encode(dict(t.params)) for t in pending])
            x, y = np.vstack([x, xp]), np.concatenate([y, gp.predict(xp)])
            gp = self._fit(x, y, optimize=False, kernel=gp.kernel_)
        taken = {_key(p) for p in (*(t.params for t in self._done), *(t.params for t in pending))}
        return Suggestion(self._maximise_ei(gp, x, y, taken))

    def _fit(self, x: np.ndarray, y: np.ndarray, optimize: bool, kernel=None):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        if kernel is None:
            kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                      * Matern(length_scale=np.full(x.shape[1], 0.3), length_scale_bounds=(1e-2, 1e2), nu=2.5)
                      + WhiteKernel(1e-4, (1e-8, 1e-1)))
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True,
                                      optimizer="fmin_l_bfgs_b" if optimize else None,
                                      n_restarts_optimizer=2 if optimize else 0,
                                      random_state=int(self.rng.integers(2**31 - 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gp.fit(x, y)
        return gp

    def _maximise_ei(self, gp, x: np.ndarray, y: np.ndarray, taken: set[tuple]) -> dict[str, Any]:
        """The new point (not in ``taken``) of largest expected improvement."""
        from scipy.optimize import minimize

        best = float(y.max())
        scale = float(np.std(y)) or 1.0
        xi = self.xi * scale
        randoms = np.array([self.encoder.encode(self.searchspace.sample(self.rng)) for _ in range(self.n_candidates)])
        top = x[np.argsort(-y)[:5]]
        cont = self.encoder.continuous
        local = np.repeat(top, 40, axis=0)
        local[:, cont] += self.rng.normal(scale=0.05, size=(len(local), int(cont.sum())))
        cand = self.encoder.impute(np.clip(np.vstack([randoms, local]), 0.0, 1.0))
        mu, sigma = gp.predict(cand, return_std=True)
        ei = expected_improvement(mu, sigma, best, xi)
        order = np.argsort(-ei, kind="stable")
        found = [(float(ei[i]), cand[i]) for i in order[:self.n_refine]]
        for start in cand[order[:self.n_refine]]:
            free = cont & (start >= 0.0)  # the imputed coordinates of inactive dimensions stay
            if not free.any():
                continue

            def neg_ei(z: np.ndarray, start: np.ndarray = start, free: np.ndarray = free) -> float:
                point = start.copy()
                point[free] = z
                m, s = gp.predict(self.encoder.impute(point)[None, :], return_std=True)
                return -float(expected_improvement(m, s, best, xi)[0])
            res = minimize(neg_ei, start[free], method="L-BFGS-B", bounds=[(0.0, 1.0)] * int(free.sum()),
                           options={"maxiter": 30})
            refined = start.copy()
            refined[free] = res.x
            found.append((-float(res.fun), refined))
        found += [(float(ei[i]), cand[i]) for i in order[self.n_refine:]]
        ranked = sorted(found, key=lambda f: -f[0])  # stable: ties keep the order above
        points = (self.encoder.decode(v) for _, v in ranked)
        # every candidate taken happens only in a small finite space: the scheduler then draws an untried point
        return next((p for p in points if _key(p) not in taken), self.encoder.decode(ranked[0][1]))
