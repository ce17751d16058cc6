"""Tree-structured Parzen Estimator (Bergstra et al., NeurIPS 2011), in numpy.

Finished trials are split into the best few (``l``, ``gamma(n) = min(ceil(0.1 n), 25)``) and the
rest (``g``). Each group becomes a mixture of kernels, one per trial plus a broad prior, and the
next point is the candidate drawn from ``l`` with the largest ``l(x) / g(x)``. By default the
kernels are products over all dimensions (multivariate TPE), so a candidate keeps the values
that went together in one good trial. Ranges are modelled in the unit interval (log-scaled where
the dimension is), by truncated Gaussians whose width is the gap to the neighbouring trials;
an INTEGER value weighs the kernel's mass over its own slice; a CATEGORICAL or DISCRETE value
gets a kernel that puts most weight on the observed value and the rest evenly on all values.
Trials still running count as bad results (constant liar, as Optuna 5 does by default), so
parallel workers spread out; a point prepared ahead is asked for again when a result that ended
meanwhile joins the good ones (:meth:`TPE.outdated`).
In a conditional searchspace the dimensions are modelled in groups, as Optuna's TPE with
``group=True`` does: dimensions active in the same observations form a group, and each group's
estimators are fitted only on the observations where it was active (the good/bad split is made
over all of them); the point keeps the dimensions its parents' values make active.
With several objectives the good trials are the first Pareto fronts, and of the front that does
not fit whole, those adding the most hypervolume (multi-objective TPE, Ozaki et al., 2020).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from maggy.search.optimizers.base import Answer, Optimizer, Score, Suggestion
from maggy.search.optimizers.encoding import from_unit, to_unit, unit_slot
from maggy.search.pareto import select_best
from maggy.search.searchspace import INTEGER, RANGE_TYPES, Hyperparameter, Searchspace
from maggy.trial import FrozenTrial
from maggy.validation import check_int, check_number

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _upper(z: np.ndarray) -> np.ndarray:
    """P(Z > z) for a standard normal Z, accurate far into the tail."""
    from scipy.special import erfc  # loaded by TPESampler(), not with maggy

    return 0.5 * erfc(np.asarray(z, dtype=float) / _SQRT2)


def _mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(a < Z < b) for a standard normal Z, computed from the tail nearer to both ends."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    right = a > 0  # both ends right of zero: the difference of two upper tails
    left = b < 0   # both ends left of zero: the same, mirrored
    mid = ~(right | left)
    out = np.empty(a.shape)
    out[right] = _upper(a[right]) - _upper(b[right])
    out[left] = _upper(-b[left]) - _upper(-a[left])
    out[mid] = 1.0 - _upper(b[mid]) - _upper(-a[mid])
    return np.maximum(out, 0.0)


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


def gap_bandwidths(mus: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Kernel widths on [0, 1]: each point's larger gap to its neighbours (the bounds count as
    neighbours only for a lone point), kept within ``[1 / min(100, n + 2), 1]``, times ``scale``.

    >>> gap_bandwidths(np.array([0.5, 0.1, 0.2])).round(2).tolist()
    [0.3, 0.2, 0.3]
    """
    n = len(mus)
    if n == 0:
        return np.empty(0)
    order = np.argsort(mus, kind="stable")
    padded = np.concatenate([[0.0], mus[order], [1.0]])
    gaps = np.diff(padded)
    left, right = gaps[:-1].copy(), gaps[1:].copy()
    if n >= 2:  # the outermost points look inwards only
        left[0], right[-1] = right[0], left[-1]
    sigmas = np.empty(n)
    sigmas[order] = np.maximum(left, right)
    return scale * np.clip(sigmas, 1.0 / min(100.0, n + 2.0), 1.0)


def parallel_bandwidth(bandwidth: float, pending: int) -> float:
    """The kernel width scale with ``pending`` trials running: ``bandwidth`` for one at most,
    then towards 1 (the plain gap widths, Optuna's) as more run, never narrower. A parallel batch
    is drawn from one model, and narrow kernels crowd it around the same good points, which the
    running trials (counted as bad) push away too narrowly in several dimensions to spread it
    (bench/parallel_quality.py, mlp7, 40 trials: with 4 workers, 0.6 throughout lost 0.016 to
    one worker, this rule 0.008).

    >>> [round(parallel_bandwidth(0.6, p), 2) for p in (0, 1, 2, 4, 8)]
    [0.6, 0.6, 0.8, 0.9, 0.95]
    """
    if pending <= 1:
        return bandwidth
    return max(bandwidth, bandwidth + (1.0 - bandwidth) * (1.0 - 1.0 / pending))


def recency_weights(n: int, flat: int = 25) -> np.ndarray:
    """Weights of ``n`` observations, oldest first: the newest ``flat`` weigh 1, older ones less,
    down to ``1 / n``, so that an estimator of many trials follows where the search went lately.

    >>> recency_weights(3).tolist()
    [1.0, 1.0, 1.0]
    >>> recency_weights(27).round(2).tolist()[:3]
    [0.04, 1.0, 1.0]
    """
    if n <= flat:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, n - flat), np.ones(flat)])


class _Dimension:
    """One hyperparameter as the estimators see it: a unit interval or a list of choices."""

    def __init__(self, hp: Hyperparameter) -> None:
        self.hp = hp
        self.is_range = hp.type in RANGE_TYPES
        self.is_integer = hp.type == INTEGER
        if not self.is_range:
            self.index = {(type(v), v): i for i, v in enumerate(hp.values)}

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        if self.is_range:
            return np.array([to_unit(self.hp, v) for v in values], dtype=float)
        return np.array([self.index[(type(v), v)] for v in values], dtype=float)

    def decode(self, x: float) -> Any:
        return from_unit(self.hp, x) if self.is_range else self.hp.values[int(x)]


class _Kernels:
    """The kernels of one dimension: one per observation and a last one, the prior."""

    def __init__(self, dim: _Dimension, obs: np.ndarray, prior_weight: float, bandwidth: float) -> None:
        self.dim = dim
        n = len(obs)
        if dim.is_range:
            self.mus = np.append(obs, 0.5)
            self.sigmas = np.append(gap_bandwidths(obs, bandwidth), 1.0)
            self.log_mass = _log(_mass(-self.mus / self.sigmas, (1.0 - self.mus) / self.sigmas))
        else:
            # each observation keeps most of its weight on its own value and spreads the rest evenly:
            # the more observations, the less each one is smoothed
            k = len(dim.hp.values)
            spread = prior_weight / (n + 1.0)
            probs = np.full((n + 1, k), spread)
            probs[np.arange(n), obs.astype(int)] += 1.0
            probs[n] = 1.0
            self.probs = probs / probs.sum(axis=1, keepdims=True)

    def sample(self, comp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One value in the estimator's coordinates per entry of ``comp`` (component indices)."""
        if not self.dim.is_range:
            cum = np.cumsum(self.probs[comp], axis=1)
            return np.minimum((rng.uniform(size=(len(comp), 1)) > cum).sum(axis=1), cum.shape[1] - 1).astype(float)
        out = np.empty(len(comp))
        todo = np.arange(len(comp))
        for _ in range(100):  # rejection sampling into [0, 1]: each try succeeds with probability > 0.3
            draws = rng.normal(self.mus[comp[todo]], self.sigmas[comp[todo]])
            ok = (draws >= 0.0) & (draws <= 1.0)
            out[todo[ok]] = draws[ok]
            todo = todo[~ok]
            if not len(todo):
                break
        out[todo] = rng.uniform(size=len(todo))
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log kernel density (or mass) at each ``x``, shape ``(len(x), components)``."""
        if not self.dim.is_range:
            return np.log(self.probs[:, x.astype(int)].T)
        if self.dim.is_integer:
            edges = np.array([unit_slot(self.dim.hp, self.dim.decode(u)) for u in x]).reshape(-1, 2)
            a = (edges[:, :1] - self.mus) / self.sigmas
            b = (edges[:, 1:] - self.mus) / self.sigmas
            return _log(_mass(a, b)) - self.log_mass
        z = (x[:, None] - self.mus) / self.sigmas
        return -0.5 * z * z - np.log(self.sigmas) - _LOG_SQRT_2PI - self.log_mass


class _ParzenEstimator:
    """A weighted mixture of product kernels over ``dims``."""

    def __init__(self, dims: list[_Dimension], obs: np.ndarray, weights: np.ndarray,
                 prior_weight: float, bandwidth: float) -> None:
        self.kernels = [_Kernels(d, obs[:, j], prior_weight, bandwidth) for j, d in enumerate(dims)]
        w = np.append(weights, prior_weight)
        self.log_w = _log(w / w.sum())

    def sample(self, rng: np.random.Generator, k: int) -> np.ndarray:
        comp = rng.choice(len(self.log_w), size=k, p=np.exp(self.log_w))
        return np.stack([kern.sample(comp, rng) for kern in self.kernels], axis=1)

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        total = self.log_w + sum(kern.log_pdf(x[:, j]) for j, kern in enumerate(self.kernels))
        top = total.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(total - top).sum(axis=1, keepdims=True)))[:, 0]


class TPESampler:
    """Proposes points from observed ``(params, score)`` pairs, larger scores being better (a
    score is a number, or a tuple of one per objective).

    ``observations`` are taken oldest first (older ones weigh less once there are many);
    ``pending`` points, still being evaluated, count as bad results. Used by :class:`TPE` and,
    fitted on a rung's results, by model-based ASHA and Hyperband.

    ``bandwidth`` scales the neighbour-gap kernel widths: the gap rule is made for one
    dimension, and product kernels over several do better a little narrower (0.6 beat 1.0 on
    Branin, Hartmann-6 and two mixed spaces, bench/optimizer_quality.py), one trial at a time;
    with several running, the kernels widen (:func:`parallel_bandwidth`). ``prior_weight`` is the
    weight of the broad prior kernel against one observation's; ``n_candidates`` points are drawn
    from ``l`` and the one with the largest ``l / g`` wins.

    >>> from maggy import Searchspace
    >>> sp = Searchspace(x=("DOUBLE", [0, 1]), c=("CATEGORICAL", ["a", "b"]))
    >>> obs = [({"x": i / 10, "c": "ab"[i % 2]}, -abs(i / 10 - 0.3)) for i in range(11)]
    >>> p = TPESampler().sample(sp, obs, np.random.default_rng(0))
    >>> sp.contains(p)
    True
    """

    def __init__(self, n_candidates: int = 48, gamma: float = 0.1, max_good: int = 25,
                 prior_weight: float = 2.0, multivariate: bool = True, bandwidth: float = 0.6) -> None:
        import scipy.special  # noqa: F401  (loaded with the optimizer, 0.1 to 0.2 s, not on a worker's hand-off)

        self.multivariate = multivariate
        self.bandwidth = check_number("bandwidth", bandwidth, low=0, strict=True)
        self.n_candidates = check_int("n_candidates", n_candidates, low=1)
        self.gamma = check_number("gamma", gamma, low=0, strict=True)
        self.max_good = check_int("max_good", max_good, low=1)
        self.prior_weight = check_number("prior_weight", prior_weight, low=0, strict=True)

    def split(self, n: int) -> int:
        """How many of ``n`` results count as good."""
        return max(1, min(math.ceil(self.gamma * n), self.max_good))

    def good(self, scores: Sequence[Score]) -> tuple[int, ...]:
        """The indices of the observations with these ``scores`` that count as good, oldest
        first: what ``l`` is made of.

        >>> TPESampler(gamma=0.5).good([0.1, 0.9, 0.5, 0.7])
        (1, 3)
        """
        return tuple(sorted(select_best(np.asarray(scores, dtype=float), self.split(len(scores))).tolist()))

    def sample(self, searchspace: Searchspace, observations: Sequence[tuple[dict[str, Any], Score]],
               rng: np.random.Generator, pending: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        good = self.good([s for _, s in observations])
        scale = parallel_bandwidth(self.bandwidth, len(pending))
        bad = sorted(set(range(len(observations))) - set(good))
        good_points = [observations[i][0] for i in good]
        bad_points = [observations[i][0] for i in bad] + list(pending)
        params: dict[str, Any] = {}
        for gdims in self._groups([_Dimension(hp) for hp in searchspace], [*good_points, *bad_points]):
            name = gdims[0].hp.name  # the group's dimensions are active in the same points
            lo = self._estimator(gdims, [p for p in good_points if name in p], scale)
            hi = self._estimator(gdims, [p for p in bad_points if name in p], scale)
            cand = lo.sample(rng, self.n_candidates)
            cand = self._snap(gdims, cand)
            best = cand[int(np.argmax(lo.log_pdf(cand) - hi.log_pdf(cand)))]
            params.update({d.hp.name: d.decode(v) for d, v in zip(gdims, best)})
        return searchspace.drop_inactive(params)

    def _groups(self, dims: list[_Dimension], points: list[dict[str, Any]]) -> list[list[_Dimension]]:
        """The dimensions modelled together: those active in the same ``points`` (all of them in
        a searchspace without conditions), or each alone when not multivariate."""
        if not self.multivariate:
            return [[d] for d in dims]
        groups: dict[tuple[bool, ...], list[_Dimension]] = {}
        for d in dims:
            groups.setdefault(tuple(d.hp.name in p for p in points), []).append(d)
        return list(groups.values())

    def _estimator(self, dims: list[_Dimension], points: list[dict[str, Any]], scale: float) -> _ParzenEstimator:
        obs = np.stack([d.encode([p[d.hp.name] for p in points]) for d in dims], axis=1) if points \
            else np.empty((0, len(dims)))
        return _ParzenEstimator(dims, obs, recency_weights(len(points)), self.prior_weight, scale)

    @staticmethod
    def _snap(dims: list[_Dimension], cand: np.ndarray) -> np.ndarray:
        """Integer candidates moved to the unit position of the value they round to."""
        for j, d in enumerate(dims):
            if d.is_integer:
                cand[:, j] = [to_unit(d.hp, d.decode(u)) for u in cand[:, j]]
        return cand


class TPE(Optimizer):
    """Bayesian optimisation with Parzen estimators; random for the first ``n_startup`` trials.
    Optimises several objectives too (multi-objective TPE).

    The start-up counts the trials started, not the results: with several workers, the trials
    that start while the first results come in are modelled on those (the running ones counted
    as bad), where Optuna 5 draws them at random until ``n_startup`` results are in (with 8
    workers and 20 trials, 17 of its trials are random; bench/parallel_quality.py).

    ``multivariate=False`` models each dimension on its own (the original TPE); the default,
    None, is multivariate for one objective and per dimension for several, as Optuna 5 chooses:
    with several objectives the per-dimension kernels find far larger fronts (DTLZ2's hypervolume
    after 100 trials: 0.48 against 0.30, bench/optimizer_quality.py). The other arguments are
    :class:`TPESampler`'s.

    >>> from maggy import Searchspace
    >>> opt = TPE(n_startup=2)
    >>> opt.setup(Searchspace(x=("DOUBLE", [0, 1])), direction="min", seed=0)
    >>> 0 <= opt.ask(pending=[]).params["x"] <= 1
    True
    """

    def __init__(self, n_startup: int = 10, n_candidates: int = 48, gamma: float = 0.1,
                 multivariate: bool | None = None, bandwidth: float = 0.6, prior_weight: float = 2.0) -> None:
        self.n_startup = check_int("n_startup", n_startup, low=1)
        self.multivariate = multivariate
        self.sampler = TPESampler(n_candidates=n_candidates, gamma=gamma, bandwidth=bandwidth, prior_weight=prior_weight)
        self._done: list[FrozenTrial] = []
        self._scores: list[Score] = []  # of the trials told that ended with a result, in order

    multi_objective = True

    def reset(self) -> None:
        self._done, self._scores = [], []
        self.sampler.multivariate = not self.multi if self.multivariate is None else self.multivariate

    def ask(self, pending: Sequence[FrozenTrial]) -> Answer:
        obs = self.observations(self._done)
        if not obs or len(obs) + len(pending) < self.n_startup:  # the first n_startup trials started
            return Suggestion(self.searchspace.sample(self.rng))
        return Suggestion(self.sampler.sample(self.searchspace, obs, self.rng,
                                              pending=[dict(t.params) for t in pending]),
                          info={"good": self.sampler.good([s for _, s in obs])})

    @property
    def learns(self) -> bool:
        return True

    def tell(self, trial: FrozenTrial) -> None:
        self._done.append(trial)
        if (score := self.result_of(trial)) is not None:
            self._scores.append(score)

    def outdated(self, suggestion: Suggestion) -> bool:
        """Whether the results told since ``suggestion`` changed its good group. Otherwise they
        went to the bad group, where the suggestion already counted them as running trials:
        asking again would model the same. A start-up draw stays one."""
        good = suggestion.info.get("good")
        return good is not None and good != self.sampler.good([*(s for _, s in self.prior), *self._scores])
