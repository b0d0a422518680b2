"""The scikit-learn and joblib internals the fit journal relies on (evosweep.journal.sklearn_joblib),
checked against the pinned versions: an upgrade that changes one fails here, by name, rather than
as a journal that silently stops answering or records the wrong fits."""

from __future__ import annotations

import importlib
import inspect

import pytest
from joblib import parallel_config, register_parallel_backend
from joblib._parallel_backends import ThreadingBackend
from joblib.parallel import BatchedCalls
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

from evosweep.journal import sklearn_joblib


def test_the_fit_function_and_its_keywords_are_where_the_journal_looks():
    module, name = sklearn_joblib.FIT_FUNCTION
    function = getattr(importlib.import_module(module), name)
    parameters = inspect.signature(function).parameters
    assert list(parameters)[:3] == ["estimator", "X", "y"]
    missing = sklearn_joblib.UNKEYED_ARGUMENTS - set(parameters)
    assert not missing, f"{module}.{name} no longer takes {sorted(missing)}"
    # What decides a fit's result must stay among the keywords the journal keys.
    assert {"train", "test", "parameters", "scorer", "fit_params"} <= set(parameters)


class _Recording(ThreadingBackend):
    """Threads, batches of up to 3 fits, and a record of every batch submitted."""

    batches: list = []

    def compute_batch_size(self):
        return 3

    def submit(self, func, callback=None):
        _Recording.batches.append(func)
        return super().submit(func, callback)


@pytest.fixture()
def search_batches():
    """The joblib batches of a small grid search: 2 candidates x 3 folds."""
    _Recording.batches = []
    register_parallel_backend("evosweep-recording", _Recording)
    features, labels = make_classification(n_samples=60, random_state=0)
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2]}, cv=3)
    with parallel_config(backend="evosweep-recording", n_jobs=2):
        search.set_params(n_jobs=2).fit(features, labels)
    return _Recording.batches


def test_a_search_batch_holds_fits_the_journal_recognises(search_batches):
    fits = []
    for batch in search_batches:
        assert isinstance(batch, BatchedCalls)
        calls = sklearn_joblib.calls(batch)
        assert len(batch) == len(calls) > 0
        for function, args, kwargs in calls:
            fit = sklearn_joblib.as_fit((function, args, kwargs))
            assert fit is not None, f"not taken for a fit: {function!r}"
            assert isinstance(fit.config, dict)  # scikit-learn's configuration wrapper
            assert not sklearn_joblib.UNKEYED_ARGUMENTS & set(fit.keywords)
            fits.append(fit)
    assert len(fits) == 2 * 3
    assert sklearn_joblib.as_fit((print, ("x",), {})) is None


def test_part_of_a_batch_makes_only_its_calls(search_batches):
    batch = max(search_batches, key=len)
    size = len(batch)
    assert size >= 2
    part = sklearn_joblib.part(batch, [1])
    assert len(part) == 1 and sklearn_joblib.calls(part) == [sklearn_joblib.calls(batch)[1]]
    assert len(batch) == size  # the original is untouched
    (result,) = part()
    assert result["fit_error"] is None and "test_scores" in result
