"""Pieces of the small test configs that many tests share (fresh dicts on every call, so a test
may change its copy)."""

from __future__ import annotations

IRIS_SPACE = {"C": {"logspace": [-1, 1, 3]}, "gamma": {"logspace": [-2, 0, 2]}}  # 6 candidates


def iris() -> dict:
    return {"source": "sklearn:iris", "test_size": 0.3}


def svc_iris(**changes) -> dict:
    """An RBF SVC on iris over `IRIS_SPACE`, 3 folds; `changes` replace or add keys."""
    return {
        "dataset": "iris",
        "estimator": "sklearn.svm.SVC",
        "space": {name: dict(values) for name, values in IRIS_SPACE.items()},
        "cv": 3,
        **changes,
    }


def rastrigin(**changes) -> dict:
    """A small CMA-ES on Rastrigin."""
    return {
        "algorithm": "cma-es",
        "objective": "rastrigin",
        "dimensions": 5,
        "lambda": 10,
        "generations": 5,
        **changes,
    }


def iris_features(**changes) -> dict:
    """NSGA-II feature selection with the `svc_iris` model."""
    return {
        "algorithm": "nsga2",
        "objective": "feature_selection",
        "model": "svc_iris",
        "population": 8,
        "generations": 2,
        **changes,
    }


def iris_search(engines: int | None, seed: int = 42, **models) -> dict:
    """A config with the iris dataset and the search `models` (default: svc_iris only)."""
    return {
        "seed": seed,
        "datasets": {"iris": iris()},
        "search": {"engines": engines, "models": models or {"svc_iris": svc_iris()}},
    }
