"""Random search: independent uniform (log-uniform where asked) draws from the searchspace."""

from __future__ import annotations

from typing import Sequence

from maggy.search.optimizers.base import Answer, Optimizer, Suggestion
from maggy.trial import FrozenTrial


class RandomSearch(Optimizer):
    """Draws every trial independently; a strong baseline that parallelises perfectly.

    >>> from maggy import Searchspace
    >>> opt = RandomSearch()
    >>> opt.setup(Searchspace(n=("INTEGER", [1, 3])), direction="min", seed=1)
    >>> opt.ask(pending=[]).params["n"] in (1, 2, 3)
    True
    """

    multi_objective = True  # its points do not depend on the results

    def ask(self, pending: Sequence[FrozenTrial]) -> Answer:
        return Suggestion(self.searchspace.sample(self.rng))
