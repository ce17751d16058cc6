from __future__ import annotations

import itertools

import numpy as np
import pytest

from maggy.search.pareto import chebyshev, front_ranks, hypervolume, pareto_mask, select_best


def brute_front(points: np.ndarray) -> list[bool]:
    """Non-dominated by the definition, pair by pair."""
    def dominates(a, b):
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))
    return [not any(dominates(q, p) for j, q in enumerate(points) if j != i) for i, p in enumerate(points)]


def brute_volume(points: np.ndarray, ref: np.ndarray, cells: int = 40) -> float:
    """The dominated volume counted on a grid of cells over the bounding box (exact for points on the grid)."""
    hi = points.max(axis=0)
    edges = [np.linspace(r, h, cells + 1) for r, h in zip(ref, hi)]
    centres = [0.5 * (e[1:] + e[:-1]) for e in edges]
    cell = np.prod([(h - r) / cells for r, h in zip(ref, hi)])
    count = sum(any((p >= c).all() for p in points) for c in map(np.array, itertools.product(*centres)))
    return count * cell


@pytest.mark.parametrize("dims", [2, 3])
def test_the_mask_and_the_ranks_match_dominance_pair_by_pair(dims):
    rng = np.random.default_rng(dims)
    pts = rng.integers(0, 6, size=(40, dims)).astype(float)  # ties and duplicates on purpose
    assert pareto_mask(pts).tolist() == brute_front(pts)
    ranks = front_ranks(pts)
    for r in range(ranks.max() + 1):  # each front is the non-dominated set of what the earlier fronts left
        left = ranks >= r
        assert (ranks[left] == r).tolist() == brute_front(pts[left])


@pytest.mark.parametrize("dims", [2, 3])
def test_hypervolume_equals_the_volume_counted_cell_by_cell(dims):
    rng = np.random.default_rng(10 + dims)
    pts = rng.integers(1, 9, size=(12, dims)).astype(float) / 8  # on the grid of 8 cells per unit
    ref = np.zeros(dims)
    assert hypervolume(pts, ref) == pytest.approx(brute_volume(pts, ref, cells=8))


def test_hypervolume_ignores_points_not_beyond_the_reference_and_dominated_ones():
    assert hypervolume([[2.0, 2.0]], [0.0, 0.0]) == 4.0
    assert hypervolume([[2.0, 2.0], [1.0, 1.0], [3.0, -1.0]], [0.0, 0.0]) == 4.0
    assert hypervolume([], [0.0, 0.0]) == 0.0


def test_select_best_takes_whole_fronts_then_the_most_hypervolume():
    pts = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.2], [0.1, 0.1]])
    assert sorted(select_best(pts, 3).tolist()) == [0, 1, 2]
    assert sorted(select_best(pts, 4).tolist()) == [0, 1, 2, 3]
    assert select_best(pts, 1).tolist() == [2]  # the knee adds more hypervolume than either end
    assert select_best(np.array([[3.0], [1.0], [2.0]]), 2).tolist() == [0, 2]


def test_chebyshev_weights_pick_the_end_they_favour():
    pts = [[1.0, 0.0], [0.0, 1.0]]
    assert np.argmax(chebyshev(pts, [0.9, 0.1])) == 0
    assert np.argmax(chebyshev(pts, [0.1, 0.9])) == 1
