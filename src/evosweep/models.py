"""A search model as one typed value: what the search and the evolution stages share.

`Model.from_config` parses a `search.models` entry once; strategies, the evolution's
objectives and the outputs receive the value and ask it for the estimator, the folds, the
scorers and the test scores, so a model is fitted and scored the same way whichever stage asks.
What crosses processes is `to_config()`'s plain entry, parsed again on arrival.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evosweep.errors import ConfigError

CLUSTER_SCORING = "silhouette"


@dataclass(frozen=True)
class Model:
    """One `search.models` entry. `evolution`: the GA settings of the evolutionary strategy;
    `dataset` is None and `space` empty for a model scored at fixed params only."""

    name: str
    dataset: str | None
    estimator: str  # dotted import path of the estimator class
    params: Mapping[str, Any]
    space: Mapping[str, Any]
    strategy: str
    n_iter: int
    cv: int
    scoring: str
    evolution: Mapping[str, Any]

    @classmethod
    def from_config(cls, name: str, entry: Mapping[str, Any]) -> Model:
        """The entry as the config holds it, or the part of it a caller needs (missing keys
        take the schema's defaults)."""
        from evosweep.config import model_defaults

        defaults = model_defaults()
        filled = {**defaults, "dataset": None, "space": {}, **entry}
        filled["evolution"] = {**defaults["evolution"], **entry.get("evolution", {})}
        return cls(name=name, **filled)

    def to_config(self) -> dict:
        """The plain entry (JSON-able), as `from_config` reads it."""
        entry = dataclasses.asdict(self)
        del entry["name"]
        return entry

    def with_params(self, params: Mapping[str, Any] | None) -> Model:
        """This model with `params` laid over its fixed params."""
        return dataclasses.replace(self, params={**self.params, **(params or {})})

    def where(self, key: str) -> str:
        """The key path of one of this model's settings, for error messages."""
        return f"search.models.{self.name}.{key}"

    @property
    def is_clusterer(self) -> bool:
        return self.scoring == CLUSTER_SCORING

    @property
    def refit_metric(self) -> str:
        """The cv_results_ column suffix of the score a search ranks by."""
        return "silhouette" if self.is_clusterer else "score"

    def estimator_class(self) -> type:
        """Import the dotted `estimator` path; a ConfigError if it is not an estimator."""
        module_name, _, class_name = self.estimator.rpartition(".")
        where = self.where("estimator")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ConfigError(
                where, f"cannot import module {module_name!r} of {self.estimator!r} ({error})"
            ) from None
        cls = getattr(module, class_name, None)
        if cls is None:
            raise ConfigError(where, f"module {module_name!r} has no {class_name!r}")
        if not (isinstance(cls, type) and hasattr(cls, "get_params") and hasattr(cls, "fit")):
            raise ConfigError(where, f"{self.estimator!r} is not a scikit-learn estimator")
        return cls

    def build(self, seed: int | None = None, params: Mapping[str, Any] | None = None):
        """The estimator with its fixed params (updated by `params`); unknown params are a
        ConfigError. A `random_state` the user did not fix is set to `seed`, so fits are
        reproducible whatever process runs them."""
        cls = self.estimator_class()
        valid = self._parameter_names(cls)
        arguments = {**self.params, **(params or {})}
        if seed is not None and "random_state" in valid and "random_state" not in self.params:
            arguments["random_state"] = seed
        try:
            return cls(**arguments)
        except Exception as error:  # noqa: BLE001 - any constructor failure is the config's fault
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError(
                self.where("params"), f"{self.estimator}(**params) failed: {first_line}"
            ) from None

    def _parameter_names(self, cls: type) -> set[str]:
        """The estimator's parameters; a ConfigError names the first param or space key that
        is not one of them."""
        try:
            valid = set(cls().get_params())
        except TypeError as error:
            raise ConfigError(
                self.where("estimator"),
                f"{self.estimator!r} cannot be built without arguments ({error})",
            ) from None
        for given, label in ((self.params, "params"), (self.space, "space")):
            unknown = sorted(set(given) - valid)
            if unknown:
                raise ConfigError(
                    f"{self.where(label)}.{unknown[0]}",
                    f"{self.estimator} has no parameter {unknown[0]!r}; "
                    f"valid: {', '.join(sorted(valid))}",
                )
        return valid

    def folds(self, seed: int, n_splits: int | None = None):
        """Shuffled, seeded folds: stratified for classifiers, plain for clustering."""
        from sklearn.model_selection import KFold, StratifiedKFold

        splitter = KFold if self.is_clusterer else StratifiedKFold
        return splitter(n_splits=n_splits or self.cv, shuffle=True, random_state=seed)

    def scorers(self):
        """(scoring argument of a scikit-learn search, its refit argument)."""
        if self.is_clusterer:
            return {
                "silhouette": silhouette_scorer,
                "neg_inertia": neg_inertia_scorer,
            }, "silhouette"
        return self.scoring, True

    def check(self) -> None:
        """Everything of the model itself that can be checked without data or fits: the
        estimator's import and params, the space's parameter names, the scoring."""
        estimator = self.build()
        if self.is_clusterer:
            if not hasattr(estimator, "predict"):
                raise ConfigError(
                    self.where("scoring"),
                    f"silhouette needs an estimator with predict(); {self.estimator} has none",
                )
            return
        from sklearn.metrics import get_scorer

        try:
            get_scorer(self.scoring)
        except ValueError:
            raise ConfigError(
                self.where("scoring"),
                f"unknown scoring {self.scoring!r}; use a scikit-learn scorer name or 'silhouette'",
            ) from None

    def test_scores(self, fitted, features, labels) -> dict:
        """Scores of the fitted model on the held-out test set."""
        if self.is_clusterer:
            return _cluster_test_scores(fitted, features, labels)
        from sklearn import metrics

        predicted = fitted.predict(features)
        classes = sorted(set(labels) | set(predicted))
        scores = {
            "accuracy": float(metrics.accuracy_score(labels, predicted)),
            "f1_macro": float(metrics.f1_score(labels, predicted, average="macro")),
            "labels": [_jsonable(c) for c in classes],
            "confusion_matrix": _jsonable(
                metrics.confusion_matrix(labels, predicted, labels=classes)
            ),
        }
        if self.scoring not in scores:
            scores[self.scoring] = float(metrics.get_scorer(self.scoring)(fitted, features, labels))
        return scores

    def test_score(self, scores: dict) -> float:
        """The test score the leaderboard shows: the model's own scoring."""
        return float(scores[self.scoring])


def silhouette_scorer(estimator, features, labels=None):
    """Silhouette of the estimator's clusters; labels are never used. One cluster scores -1."""
    from sklearn.metrics import silhouette_score

    predicted = estimator.predict(features)
    if len(set(predicted)) < 2:
        return -1.0
    return float(silhouette_score(features, predicted))


def neg_inertia_scorer(estimator, features, labels=None):
    """Minus the within-cluster sum of squares on these points (greater is better)."""
    return float(estimator.score(features))


def _cluster_test_scores(fitted, features, labels) -> dict:
    from sklearn import metrics

    scores = {
        "silhouette": silhouette_scorer(fitted, features),
        "inertia": -neg_inertia_scorer(fitted, features),
    }
    if labels is not None:
        scores["adjusted_rand_index"] = float(
            metrics.adjusted_rand_score(labels, fitted.predict(features))
        )
    return scores


def _jsonable(value):
    import numpy as np

    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value
