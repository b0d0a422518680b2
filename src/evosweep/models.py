"""Building and scoring a model spec: what the search and the evolution stages share.

A model spec is one `search.models` entry of the filled config (estimator, params, space,
strategy, cv, scoring). Both stages build estimators, folds and scorers here, so a model is
fitted and scored the same way whichever stage asks.
"""

from __future__ import annotations

import importlib

from evosweep import space as search_space
from evosweep.errors import ConfigError

CLUSTER_SCORING = "silhouette"


def _where(name: str, key: str) -> str:
    return f"search.models.{name}.{key}"


def is_clusterer(spec: dict) -> bool:
    return spec["scoring"] == CLUSTER_SCORING


def estimator_class(name: str, spec: dict):
    """Import the dotted `estimator` path; a ConfigError if it is not an estimator."""
    path = spec["estimator"]
    module_name, _, class_name = path.rpartition(".")
    where = _where(name, "estimator")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            where, f"cannot import module {module_name!r} of {path!r} ({error})"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(where, f"module {module_name!r} has no {class_name!r}")
    if not (isinstance(cls, type) and hasattr(cls, "get_params") and hasattr(cls, "fit")):
        raise ConfigError(where, f"{path!r} is not a scikit-learn estimator")
    return cls


def build_estimator(name: str, spec: dict, seed: int | None = None, params: dict | None = None):
    """The estimator with its fixed params (updated by `params`); unknown params are a
    ConfigError. A `random_state` the user did not fix is set to `seed`, so fits are
    reproducible whatever process runs them."""
    cls = estimator_class(name, spec)
    try:
        valid = set(cls().get_params())
    except TypeError as error:
        raise ConfigError(
            _where(name, "estimator"),
            f"{spec['estimator']!r} cannot be built without arguments ({error})",
        ) from None
    for given, label in ((spec["params"], "params"), (spec["space"], "space")):
        unknown = sorted(set(given) - valid)
        if unknown:
            raise ConfigError(
                f"{_where(name, label)}.{unknown[0]}",
                f"{spec['estimator']} has no parameter {unknown[0]!r}; "
                f"valid: {', '.join(sorted(valid))}",
            )
    arguments = {**spec["params"], **(params or {})}
    if seed is not None and "random_state" in valid and "random_state" not in spec["params"]:
        arguments["random_state"] = seed
    try:
        return cls(**arguments)
    except Exception as error:  # noqa: BLE001 - any constructor failure is the config's fault
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(
            _where(name, "params"), f"{spec['estimator']}(**params) failed: {first_line}"
        ) from None


def cv_folds(spec: dict, seed: int, n_splits: int | None = None):
    """Shuffled, seeded folds: stratified for classifiers, plain for clustering."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = KFold if is_clusterer(spec) else StratifiedKFold
    return splitter(n_splits=n_splits or spec["cv"], shuffle=True, random_state=seed)


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


def scoring_for(spec: dict):
    """(scoring argument for a search, refit metric name or True)."""
    if is_clusterer(spec):
        return {"silhouette": silhouette_scorer, "neg_inertia": neg_inertia_scorer}, "silhouette"
    return spec["scoring"], True


def check_model(name: str, spec: dict) -> None:
    """Everything that can be checked without data or fits: import, params, space, scoring."""
    estimator = build_estimator(name, spec)
    search_space.for_strategy(spec["strategy"], spec["space"], _where(name, "space"))
    if is_clusterer(spec):
        if not hasattr(estimator, "predict"):
            raise ConfigError(
                _where(name, "scoring"),
                f"silhouette needs an estimator with predict(); {spec['estimator']} has none",
            )
        return
    from sklearn.metrics import get_scorer

    try:
        get_scorer(spec["scoring"])
    except ValueError:
        raise ConfigError(
            _where(name, "scoring"),
            f"unknown scoring {spec['scoring']!r}; use a scikit-learn scorer name or 'silhouette'",
        ) from None


def check_models(config: dict) -> None:
    for name, spec in config["search"]["models"].items():
        check_model(name, spec)


def _jsonable(value):
    import numpy as np

    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value


def test_scores(model, spec: dict, features, labels) -> dict:
    """Scores of a fitted model on the held-out test set."""
    from sklearn import metrics

    if is_clusterer(spec):
        scores = {
            "silhouette": silhouette_scorer(model, features),
            "inertia": -neg_inertia_scorer(model, features),
        }
        if labels is not None:
            scores["adjusted_rand_index"] = float(
                metrics.adjusted_rand_score(labels, model.predict(features))
            )
        return scores
    predicted = model.predict(features)
    classes = sorted(set(labels) | set(predicted))
    scores = {
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "f1_macro": float(metrics.f1_score(labels, predicted, average="macro")),
        "labels": [_jsonable(c) for c in classes],
        "confusion_matrix": _jsonable(metrics.confusion_matrix(labels, predicted, labels=classes)),
    }
    if spec["scoring"] not in scores:
        scores[spec["scoring"]] = float(
            metrics.get_scorer(spec["scoring"])(model, features, labels)
        )
    return scores


def test_score(spec: dict, scores: dict) -> float:
    """The test score the leaderboard shows: the model's own scoring."""
    return float(scores[spec["scoring"]])
