from __future__ import annotations

from maggy import Searchspace
from maggy.optimizers import RandomSearch, Suggestion

SP = Searchspace(lr=("DOUBLE", [1e-5, 1e-1], "log"), n=("INTEGER", [2, 9]),
                 d=("DISCRETE", [0.1, 0.5]), c=("CATEGORICAL", ["a", "b", "c"]))


def draws(seed, k=50):
    opt = RandomSearch()
    opt.setup(SP, direction="max", seed=seed)
    return [opt.ask(pending=[]) for _ in range(k)]


def test_valid_and_reproducible():
    a, b = draws(11), draws(11)
    assert all(isinstance(s, Suggestion) and s.budget is None for s in a)
    assert [s.params for s in a] == [s.params for s in b]
    assert [s.params for s in a] != [s.params for s in draws(12)]
    assert all(SP.contains(s.params) for s in a)
    assert RandomSearch().max_trials(SP) is None
