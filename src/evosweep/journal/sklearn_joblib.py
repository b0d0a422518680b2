"""Where the fit journal leans on scikit-learn's and joblib's private internals: here only.

Both are pinned exactly (requirements.lock); tests/test_journal_internals.py fails loudly when
an upgrade changes any of these:
- scikit-learn's searches run each fit as `sklearn.model_selection._validation._fit_and_score(
  estimator, X, y, **keywords)`, the function wrapped by sklearn.utils.parallel's `_FuncWrapper`
  (`.function`), which carries the thread's scikit-learn configuration (`.config`);
- of its keywords, UNKEYED_ARGUMENTS only report progress or reach callbacks;
- joblib's `BatchedCalls` holds its calls as `items`, a list of (function, args, kwargs), and
  reports its length from `_size`, set once in its constructor;
- a fit's `callback_ctx` (scikit-learn's callback API) holds its callbacks as `_callbacks` and
  links to every other fit's context of the search; with no callbacks, `_fit_and_score` fits
  alike with `callback_ctx` and `caller` None (as for a search without callback support);
- asha sends single fits itself, as a one-call `BatchedCalls` of `_fit_and_score`, so that they
  pass through the same backend and journal as a search's batches.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

FIT_FUNCTION = ("sklearn.model_selection._validation", "_fit_and_score")
UNKEYED_ARGUMENTS = frozenset(
    {"split_progress", "candidate_progress", "verbose", "caller", "callback_ctx"}
)


class Fit(NamedTuple):
    """One call of scikit-learn's fit function, as a joblib batch holds it."""

    config: object  # scikit-learn's configuration for the call (None when not wrapped)
    estimator: object
    features: object
    labels: object
    keywords: dict  # without UNKEYED_ARGUMENTS


def as_fit(call) -> Fit | None:
    """The fit a joblib call (function, args, kwargs) makes, or None for any other call."""
    function, args, kwargs = call
    inner = getattr(function, "function", function)
    if (getattr(inner, "__module__", None), getattr(inner, "__name__", None)) != FIT_FUNCTION:
        return None
    if len(args) != 3:
        return None
    keywords = {name: value for name, value in kwargs.items() if name not in UNKEYED_ARGUMENTS}
    return Fit(getattr(function, "config", None), *args, keywords)


def calls(batch) -> list:
    """A joblib batch's calls: (function, args, kwargs) each."""
    return batch.items


def part(batch, indices: list[int]):
    """A copy of a joblib batch that makes only the calls at `indices`."""
    return _with_calls(batch, [batch.items[i] for i in indices])


def _with_calls(batch, items: list):
    """A copy of a joblib batch that makes the calls `items`."""
    copied = copy.copy(batch)
    copied.items = items
    copied._size = len(items)  # what len() reports
    return copied


def without_idle_callbacks(batch):
    """`batch`, or a copy of it whose fits without callbacks carry no callback context.

    Each fit's context links to the whole search's tree of contexts (one node per fit, each
    with its own time stamp and UUID), so pickling a batch would copy that tree every time:
    work growing with the search's size, on the client and on every engine, for callbacks that
    do not exist. A context with callbacks is sent whole: they may want the tree.
    """
    items = []
    for call in batch.items:
        function, args, kwargs = call
        context = kwargs.get("callback_ctx")
        if context is not None and not context._callbacks and as_fit(call) is not None:
            call = (function, args, {**kwargs, "callback_ctx": None, "caller": None})
        items.append(call)
    if all(new is old for new, old in zip(items, batch.items, strict=True)):
        return batch
    return _with_calls(batch, items)


def fit_batch(backend, estimator, features, labels, **keywords):
    """One fit as the joblib batch a scikit-learn search would send to `backend`."""
    from joblib import parallel
    from sklearn.model_selection._validation import _fit_and_score
    from sklearn.utils.parallel import delayed

    call = delayed(_fit_and_score)(estimator, features, labels, **keywords)
    return parallel.BatchedCalls([call], backend.get_nested_backend())
