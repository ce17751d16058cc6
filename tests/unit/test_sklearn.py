"""maggy.sklearn.SearchCV as scikit-learn sees it before any search: a proper estimator whose
parameters, lagom's settings included, survive get_params, set_params and clone; mistakes are
refused before any worker starts."""

from __future__ import annotations

import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from maggy import InvalidParameterError, Searchspace
from maggy.sklearn import SearchCV

SPACE = Searchspace(C=("DOUBLE", [0.01, 10.0]))


def test_get_params_and_clone_keep_every_argument_and_lagom_setting():
    search = SearchCV(LogisticRegression(), SPACE, cv=3, num_trials=7, backend="local", es_min=2, seed=4)
    params = search.get_params(deep=False)
    assert {k: params[k] for k in ("cv", "num_trials", "backend", "es_min", "seed")} == \
        {"cv": 3, "num_trials": 7, "backend": "local", "es_min": 2, "seed": 4}
    assert search.get_params()["estimator__C"] == 1.0
    copy = clone(search)
    assert copy is not search and copy.get_params(deep=False).keys() == params.keys() and copy.seed == 4
    copy.set_params(seed=5, estimator__max_iter=50, cv=4)
    assert (copy.seed, copy.estimator.max_iter, copy.cv, search.seed) == (5, 50, 4, 4)
    assert "es_min=2" in repr(search)


@pytest.mark.parametrize("kwargs, says", [
    ({"direction": "min"}, "SearchCV sets \\['direction'\\] itself"),
    ({"scoring": ["accuracy", "f1"]}, "SearchCV takes one scorer"),
])
def test_settings_searchcv_decides_are_refused(kwargs, says):
    with pytest.raises(InvalidParameterError, match=says):
        SearchCV(LogisticRegression(), SPACE, backend="local", **kwargs).fit([[0.0], [1.0]], [0, 1])


def test_a_searchspace_naming_what_the_estimator_does_not_take_is_refused():
    with pytest.raises(InvalidParameterError, match=r"names \['depth'\], which LogisticRegression does not take"):
        SearchCV(LogisticRegression(), Searchspace(depth=("INTEGER", [1, 3])), backend="local").fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(InvalidParameterError, match="must be a maggy.Searchspace"):
        SearchCV(LogisticRegression(), {"C": [1, 2]}, backend="local").fit([[0.0], [1.0]], [0, 1])
