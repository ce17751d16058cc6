from __future__ import annotations

import pytest

from maggy import InvalidParameterError, Searchspace
from maggy.optimizers import DONE, GridSearch


def test_enumerates_the_whole_grid_once_then_done():
    sp = Searchspace(x=("DOUBLE", [0, 1]), c=("CATEGORICAL", ["a", "b"]), n=("INTEGER", [1, 3]))
    opt = GridSearch(resolution=3)
    opt.setup(sp, direction="min")
    seen = []
    while (s := opt.ask(pending=[])) != DONE:
        seen.append(tuple(sorted(s.params.items())))
    assert len(seen) == len(set(seen)) == 3 * 2 * 3 == opt.max_trials(sp)
    assert opt.ask(pending=[]) == DONE
    opt.setup(sp, direction="min")  # a new experiment starts over
    assert opt.ask(pending=[]) != DONE


def test_resolution_is_validated():
    with pytest.raises(InvalidParameterError, match="'resolution'"):
        GridSearch(resolution=0)
