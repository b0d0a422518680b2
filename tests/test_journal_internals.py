"""The scikit-learn and joblib internals the fit journal relies on (evosweep.journal.sklearn_joblib),
checked against the pinned versions: an upgrade that changes one fails here, by name, rather than
as a journal that silently stops answering or records the wrong fits."""

from __future__ import annotations

import importlib
import inspect

import cloudpickle
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


def _recorded_batches(search, features, labels):
    _Recording.batches = []
    register_parallel_backend("evosweep-recording", _Recording)
    with parallel_config(backend="evosweep-recording", n_jobs=2):
        search.set_params(n_jobs=2).fit(features, labels)
    return _Recording.batches


def _lean_batches(n_candidates: int) -> tuple[list, list]:
    """A grid search's batches (3 fits each) as joblib made them, and without idle callbacks."""
    features, labels = make_classification(n_samples=60, random_state=0)
    # Fits of one size (the threading backend fits the batch's own estimators in place).
    grid = {"random_state": range(n_candidates)}
    search = GridSearchCV(DecisionTreeClassifier(max_depth=1), grid, cv=3)
    batches = [batch for batch in _recorded_batches(search, features, labels) if len(batch) == 3]
    return batches, [sklearn_joblib.without_idle_callbacks(batch) for batch in batches]


def test_a_batch_without_callbacks_travels_without_the_search_s_context_tree():
    small, small_lean = _lean_batches(4)
    large, large_lean = _lean_batches(40)
    # Every fit's context links to all the others': a batch of the 120-fit search would
    # carry 120 contexts, one of the 12-fit search 12.
    sizes = [len(cloudpickle.dumps(batches[0])) for batches in (small_lean, large_lean)]
    assert max(sizes) <= 1.05 * min(sizes), sizes
    for batch, original in zip(large_lean, large, strict=True):
        assert len(batch) == len(original)
        for (_, _, kwargs), (_, _, untouched) in zip(batch.items, original.items, strict=True):
            assert kwargs["callback_ctx"] is None and kwargs["caller"] is None
            assert untouched["callback_ctx"] is not None  # joblib's batch is left as it was
    assert [result["test_scores"] for result in large_lean[0]()] == [
        result["test_scores"] for result in large[0]()
    ]


class _CountingCallback:
    """A scikit-learn fit callback: counts the fit tasks it saw begin."""

    def __init__(self):
        self.begun = 0

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, **data):
        self.begun += 1

    def on_fit_task_end(self, estimator, context, **data):
        pass


def test_a_batch_whose_fits_have_callbacks_keeps_their_context():
    features, labels = make_classification(n_samples=60, random_state=0)
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2]}, cv=3)
    search.set_callbacks(_CountingCallback())
    for batch in _recorded_batches(search, features, labels):
        assert sklearn_joblib.without_idle_callbacks(batch) is batch
