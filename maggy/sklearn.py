"""A scikit-learn search estimator that runs its candidates as maggy trials.

:class:`SearchCV` has the interface of ``GridSearchCV``: ``fit``, then ``predict``, ``score``,
``best_params_``, ``best_score_``, ``best_estimator_`` and ``cv_results_`` in scikit-learn's
format. Each trial is one candidate, proposed by maggy's optimizer; its folds are reported as
steps (the mean score so far), so the median rule or ASHA's early stopping drops a poor
candidate after its first folds instead of fitting all of them; the candidates run in parallel
on Spark's executors (``backend="spark"``) or in processes on this machine (``backend="local"``)::

    from maggy import Searchspace
    from maggy.sklearn import SearchCV

    search = SearchCV(RandomForestClassifier(random_state=0),
                      Searchspace(max_depth=("INTEGER", [2, 12]), max_features=("DOUBLE", [0.1, 1.0])),
                      cv=5, scoring="roc_auc", num_trials=40, optimizer="tpe", backend="local")
    search.fit(x, y)
    search.best_params_, search.best_score_, search.predict(x_test)

A candidate that ran every fold is scored exactly as ``GridSearchCV`` scores it; one that was
stopped has the scores of the folds it ran and NaN for the others, so its ``mean_test_score`` is
NaN and it ranks last, as a candidate whose fit failed does in scikit-learn.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.model_selection._search import BaseSearchCV

from maggy import experiment
from maggy.exceptions import ExperimentFailedError, InvalidParameterError
from maggy.integrations.sklearn.worker import Candidate
from maggy.search.searchspace import Searchspace

#: lagom's settings that SearchCV decides itself.
_OWN = ("direction", "optimization_key", "searchspace")


class SearchCV(BaseSearchCV):
    """Cross-validated search over a maggy :class:`~maggy.Searchspace` with maggy's optimizers,
    early stopping between folds, and Spark or local workers.

    Args:
        estimator: the scikit-learn estimator to tune (cloned for each fold).
        searchspace: the hyperparameters, named as ``estimator.get_params()`` names them
            (``"svc__C"`` for a step of a pipeline).
        cv: the folds, as ``GridSearchCV`` takes them (an int, a splitter, an iterable of splits).
        scoring: one scorer (a name, a callable), as ``GridSearchCV`` takes it; default: the
            estimator's own ``score``. Scores are maximised (scikit-learn negates losses).
        num_trials: candidates to try; default: the whole grid for ``optimizer="gridsearch"``, else 10.
        optimizer: maggy's optimizer (``"randomsearch"``, ``"gridsearch"``, ``"tpe"``, ``"gp"`` ...).
        refit: fit the best candidate on the whole data, for ``predict`` and ``score``.
        backend: ``"spark"``, ``"local"`` or a :class:`~maggy.engine.backends.Backend`, as for ``lagom``.
        verbose: show lagom's live progress.
        settings: any other setting of ``lagom`` (``es_policy="median"``, ``es_min``, ``num_workers``,
            ``seed``, ``name``, ``experiment_dir`` ...); ``get_params`` and ``clone`` keep them.

    After ``fit``: ``cv_results_``, ``best_index_``, ``best_params_``, ``best_score_``,
    ``best_estimator_`` (with ``refit``), ``refit_time_``, ``scorer_``, ``n_splits_``, and
    ``result_``: lagom's :class:`~maggy.result.Result` (trial table, histories, plots).
    ``cv_results_`` has scikit-learn's keys, and ``state``: each candidate's trial state
    (``FINALIZED``, ``EARLY_STOPPED``, ``ERROR``).
    """

    #: GridSearchCV's option, which SearchCV does not offer (train scores would double every fit's cost).
    return_train_score = False
    multimetric_ = False

    def __init__(self, estimator: Any, searchspace: Searchspace, *, cv: Any = 5, scoring: Any = None,
                 num_trials: int | None = None, optimizer: Any = "randomsearch", refit: bool = True,
                 backend: Any = "spark", verbose: bool = False, **settings: Any) -> None:
        self.estimator = estimator
        self.searchspace = searchspace
        self.cv = cv
        self.scoring = scoring
        self.num_trials = num_trials
        self.optimizer = optimizer
        self.refit = refit
        self.backend = backend
        self.verbose = verbose
        self._settings = tuple(settings)
        for key, value in settings.items():
            setattr(self, key, value)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, lagom's settings included (so that ``clone`` keeps them)."""
        params = super().get_params(deep)
        params.update({key: getattr(self, key) for key in self._settings})
        return params

    def fit(self, X: Any, y: Any = None, *, groups: Any = None, **fit_params: Any) -> "SearchCV":
        """Run the search on ``X, y`` (``groups`` for a group splitter; ``fit_params`` go to the
        estimator's ``fit``, those with a value per sample cut to each fold), then refit the best."""
        settings = {key: getattr(self, key) for key in self._settings}
        if not isinstance(self.searchspace, Searchspace):
            raise InvalidParameterError(
                f"SearchCV's searchspace must be a maggy.Searchspace; got {type(self.searchspace).__name__}. Build one with "
                "Searchspace(max_depth=('INTEGER', [2, 12]), C=('DOUBLE', [1e-3, 1e3], 'log')).")
        given = [key for key in _OWN if key in settings]
        if given:
            raise InvalidParameterError(
                f"SearchCV sets {given} itself: it maximises the cross-validated score (scikit-learn's scorers are "
                "higher-is-better; losses are negated, as in scoring='neg_log_loss'). Remove them.")
        if isinstance(self.scoring, (dict, list, tuple, set)):
            raise InvalidParameterError(
                f"SearchCV takes one scorer; got scoring={self.scoring!r}. Pass one name or callable, e.g. scoring='roc_auc'.")
        unknown = sorted(set(self.searchspace.names) - set(self.estimator.get_params(deep=True)))
        if unknown:
            raise InvalidParameterError(
                f"The searchspace names {unknown}, which {type(self.estimator).__name__} does not take; its parameters "
                f"are {sorted(self.estimator.get_params(deep=True))}.")
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)
        splits = list(check_cv(self.cv, y, classifier=is_classifier(self.estimator)).split(X, y, groups))
        self.n_splits_ = len(splits)
        fn = Candidate(self.estimator, X, y, splits, self.scorer_, fit_params)
        result = experiment.lagom(fn, self.searchspace, backend=self.backend, verbose=self.verbose,
                                  num_trials=self.num_trials, optimizer=self.optimizer, direction="max", **settings)
        self.result_ = result
        self.cv_results_ = self._cv_results(result)
        means = self.cv_results_["mean_test_score"]
        if np.isnan(means).all():
            raise ExperimentFailedError(
                f"No candidate ran all {self.n_splits_} folds: every one was stopped early or failed (see "
                f"search.result_.trials). Run more trials, or let more finish before stopping (es_min=).")
        self.best_index_ = int(np.nanargmax(means))  # GridSearchCV's: the first of rank 1
        self.best_params_ = self.cv_results_["params"][self.best_index_]
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = clone(self.estimator).set_params(**clone(self.best_params_, safe=False))
            self.best_estimator_.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - start
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        return self

    def _cv_results(self, result: Any) -> dict[str, Any]:
        """``cv_results_`` from the trials that ran, in the order they started, as scikit-learn
        formats it; a fold a candidate did not run has NaN."""
        nan = float("nan")
        trials = sorted((t for t in result.views if t.state.finished), key=lambda t: (t.start or 0.0, t.trial_id))
        params, out = [], []
        for trial in trials:
            params.append(dict(trial.params))
            for k in range(self.n_splits_):
                out.append({"test_scores": trial.extra.get(f"split{k}_test_score", nan),
                            "fit_time": trial.extra.get(f"split{k}_fit_time", nan),
                            "score_time": trial.extra.get(f"split{k}_score_time", nan)})
        with warnings.catch_warnings():  # a stopped candidate's NaN is what it says, not a failure to warn of
            warnings.filterwarnings("ignore", message="One or more of the test scores are non-finite", category=UserWarning)
            warnings.filterwarnings("ignore", message="Mean of empty slice", category=RuntimeWarning)
            results = self._format_results(params, self.n_splits_, out)
        results["state"] = [t.state.value for t in trials]
        results["trial_id"] = [t.trial_id for t in trials]
        return results
