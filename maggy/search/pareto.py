"""Pareto dominance on score vectors, larger being better on every coordinate.

A point dominates another when it is at least as good on every objective and better on one.
The non-dominated points form the first front; without them, the next front is what is left
non-dominated, and so on (NSGA-II's non-dominated sorting). The hypervolume of a set is the
volume it dominates above a reference point: the figure by which fronts are compared.

>>> pts = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.2]])
>>> pareto_mask(pts).tolist()
[True, True, True, False]
>>> front_ranks(pts).tolist()
[0, 0, 0, 1]
>>> float(hypervolume(pts, reference=[-1.0, -1.0]))
3.25
>>> sorted(select_best(pts, 2).tolist())  # the middle point adds the most hypervolume
[0, 2]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.ndim == 2:
        return pts
    return pts.reshape(len(pts), -1) if len(pts) else pts.reshape(0, 0)


def dominated_by(points: np.ndarray) -> np.ndarray:
    """``out[i, j]``: whether point ``j`` dominates point ``i``."""
    ge = (points[None, :, :] >= points[:, None, :]).all(axis=2)
    gt = (points[None, :, :] > points[:, None, :]).any(axis=2)
    return np.asarray(ge & gt, dtype=bool)


def pareto_mask(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Which points no other point dominates (equal points are all kept)."""
    pts = _as_points(points)
    return np.asarray(~dominated_by(pts).any(axis=1), dtype=bool) if len(pts) else np.zeros(0, dtype=bool)


def front_ranks(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The front of each point: 0 for the non-dominated ones, 1 for those only they dominate, ..."""
    pts = _as_points(points)
    beaten = dominated_by(pts)
    ranks = np.full(len(pts), -1)
    rank = 0
    while (ranks < 0).any():
        left = ranks < 0
        # a point is in this front when no point still left dominates it
        front = left & ~(beaten & left[None, :]).any(axis=1)
        ranks[front] = rank
        rank += 1
    return ranks


def hypervolume(points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]) -> float:
    """The volume that ``points`` dominate and that dominates ``reference`` (points not better
    than ``reference`` on every coordinate add nothing).

    Exact, by slicing along the last objective down to a sweep in two dimensions: cheap for the
    fronts of a tuning run (tens of points, two to four objectives); no library in our
    dependencies computes it.

    >>> float(hypervolume([[3.0, 1.0, 1.0], [1.0, 3.0, 1.0]], reference=[0, 0, 0]))
    5.0
    """
    ref = np.asarray(reference, dtype=float)
    pts = _as_points(points)
    pts = pts[(pts > ref).all(axis=1)] - ref if len(pts) else pts
    if not len(pts):
        return 0.0
    return float(_volume(pts[pareto_mask(pts)]))


def _volume(pts: np.ndarray) -> float:
    """Hypervolume above the origin of non-negative points."""
    if pts.shape[1] == 1:
        return float(pts.max())
    if pts.shape[1] == 2:  # sweep: by the first coordinate, largest first; the second then rises
        pts = pts[np.argsort(-pts[:, 0], kind="stable")]
        best_y, area = 0.0, 0.0
        for x, y in pts:
            if y > best_y:
                area += x * (y - best_y)
                best_y = y
        return area
    # slices between consecutive values of the last coordinate, each the volume of the points reaching it
    order = np.argsort(-pts[:, -1], kind="stable")
    pts = pts[order]
    total = 0.0
    for i in range(len(pts)):
        low = pts[i + 1, -1] if i + 1 < len(pts) else 0.0
        if pts[i, -1] > low:
            head = pts[:i + 1, :-1]
            total += _volume(head[pareto_mask(head)]) * (pts[i, -1] - low)
    return total


def chebyshev(points: Sequence[Sequence[float]] | np.ndarray, weights: Sequence[float] | np.ndarray,
              rho: float = 0.05) -> np.ndarray:
    """One number per point, larger being better: the augmented Chebyshev scalarisation of
    ParEGO (Knowles, 2006) with the objectives scaled to [0, 1]. Maximising it for weights drawn
    anew each time reaches every part of the Pareto front, the concave ones too.

    >>> chebyshev([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]], [0.5, 0.5]).round(3).tolist()
    [0.025, 0.025, 0.33]
    """
    pts = _as_points(points)
    low, span = pts.min(axis=0), np.ptp(pts, axis=0)
    scaled = (pts - low) / np.where(span > 0, span, 1.0)
    weighted = scaled * np.asarray(weights, dtype=float)
    return weighted.min(axis=1) + rho * weighted.sum(axis=1)


def select_best(points: Sequence[Sequence[float]] | np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` best points: whole fronts in rank order, and from the front that does not
    fit whole, the points that add the most hypervolume, chosen greedily (as multi-objective TPE
    and MO-ASHA split good from bad). One objective: simply the ``k`` largest."""
    pts = _as_points(points)
    k = max(0, min(k, len(pts)))
    if pts.shape[1] == 1:
        return np.argsort(-pts[:, 0], kind="stable")[:k]
    ranks = front_ranks(pts)
    chosen: list[int] = []
    for rank in range(int(ranks.max()) + 1 if len(pts) else 0):
        front = np.flatnonzero(ranks == rank)
        if len(chosen) + len(front) <= k:
            chosen.extend(front.tolist())
            continue
        chosen.extend(_greedy_hypervolume(pts[front], k - len(chosen), front))
        break
    return np.array(chosen, dtype=int)


def _greedy_hypervolume(front: np.ndarray, k: int, index: np.ndarray) -> list[int]:
    """``k`` of ``front``'s points (their ``index``), each adding the most hypervolume to those
    before, above a reference just below the front's worst values."""
    span = np.ptp(front, axis=0)
    ref = front.min(axis=0) - np.where(span > 0, 0.1 * span, 1.0)
    picked: list[int] = []
    base = 0.0
    for _ in range(k):
        gains = [hypervolume(front[picked + [j]], ref) - base if j not in picked else -np.inf
                 for j in range(len(front))]
        j = int(np.argmax(gains))
        picked.append(j)
        base += gains[j]
    return [int(index[j]) for j in picked]
