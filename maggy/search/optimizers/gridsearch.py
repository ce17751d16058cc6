"""Grid search: every point of the searchspace grid once, then done."""

from __future__ import annotations

from typing import Mapping, Sequence

from maggy.search.optimizers.base import DONE, Answer, Optimizer, Suggestion
from maggy.search.searchspace import Searchspace
from maggy.trial import FrozenTrial
from maggy.validation import check_int


class GridSearch(Optimizer):
    """Enumerates the grid in order; continuous ranges get ``resolution`` points each.

    >>> from maggy import Searchspace
    >>> opt = GridSearch(resolution=2)
    >>> opt.setup(Searchspace(x=("DOUBLE", [0, 1]), c=("CATEGORICAL", ["a", "b"])), direction="max")
    >>> [opt.ask(pending=[]).params for _ in range(4)][-1]
    {'x': 1.0, 'c': 'b'}
    >>> opt.ask(pending=[])
    'done'
    """

    multi_objective = True  # its points do not depend on the results

    def __init__(self, resolution: int | Mapping[str, int] = 5) -> None:
        if not isinstance(resolution, Mapping):
            check_int("resolution", resolution, low=1)
        self.resolution = resolution
        self._points: Sequence[dict] = []
        self._next = 0

    def reset(self) -> None:
        self._points = self.searchspace.grid(self.resolution)
        self._next = 0

    def ask(self, pending: Sequence[FrozenTrial]) -> Answer:
        if self._next >= len(self._points):
            return DONE
        self._next += 1
        return Suggestion(dict(self._points[self._next - 1]))

    def max_trials(self, searchspace: Searchspace) -> int | None:
        return searchspace.grid_size(self.resolution)
