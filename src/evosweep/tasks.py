"""What a learning task decides: its scorers, estimators, folds, test scores and ranking.

A dataset's task is `classification`, `regression` or `clustering` (`datasets.NAME.task`, or
inferred from its target by :func:`infer`). A model's task follows from its scoring
(:func:`scoring_task`); the checks here stop a model that cannot work on its dataset before any
job. Score convention: every scikit-learn scorer is "greater is better" -- error metrics are
negated (`neg_root_mean_squared_error` = -RMSE) -- so the best model has the highest score
whatever the task (:func:`rank`).
"""

from __future__ import annotations

from evosweep.errors import ConfigError

TASKS = ("classification", "regression", "clustering")
CLUSTER_SCORING = "silhouette"  # evosweep's own scorer for clustering models
# Integer targets with more distinct values than this are inferred to be regression targets.
MAX_INFERRED_CLASSES = 20
# scikit-learn's regression scorers (test_tasks checks this list against every scorer name of
# the pinned version); every other scikit-learn scorer compares discrete labels.
REGRESSION_SCORERS = frozenset(
    {
        "r2",
        "explained_variance",
        "d2_absolute_error_score",
        "neg_max_error",
        "neg_mean_absolute_error",
        "neg_mean_absolute_percentage_error",
        "neg_mean_gamma_deviance",
        "neg_mean_poisson_deviance",
        "neg_mean_squared_error",
        "neg_mean_squared_log_error",
        "neg_median_absolute_error",
        "neg_root_mean_squared_error",
        "neg_root_mean_squared_log_error",
    }
)
SUGGESTED_SCORING = {
    "classification": "accuracy, f1_macro, balanced_accuracy",
    "regression": "r2, neg_root_mean_squared_error, neg_mean_absolute_error",
    "clustering": CLUSTER_SCORING,
}


def infer(labels) -> tuple[str, str]:
    """(task, why) of a target column; None (no target) is clustering.

    Text, bool or at most MAX_INFERRED_CLASSES distinct integer values: classification; other
    numeric targets: regression."""
    import pandas as pd
    from sklearn.utils.multiclass import type_of_target

    if labels is None:
        return "clustering", "no target column"
    labels = labels.dropna()
    distinct = int(labels.nunique())
    if pd.api.types.is_bool_dtype(labels) or not pd.api.types.is_numeric_dtype(labels):
        return "classification", f"non-numeric target with {distinct} distinct values"
    kind = type_of_target(labels.to_numpy())
    if kind in ("binary", "multiclass") and distinct <= MAX_INFERRED_CLASSES:
        return "classification", f"{distinct} distinct integer values"
    return "regression", f"numeric target with {distinct} distinct values"


def check_target(task: str, labels, where: str) -> None:
    """A task set in the config must fit its target; a ConfigError at `where` (the task key)."""
    import pandas as pd
    from sklearn.utils.multiclass import type_of_target

    if labels is None:
        if task != "clustering":
            raise ConfigError(where, f"{task} needs a target column; without one use clustering")
        return
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    if task == "regression" and not numeric:
        raise ConfigError(where, "regression needs a numeric target; this one is text or bool")
    if task == "classification" and numeric and type_of_target(labels.dropna()) == "continuous":
        raise ConfigError(
            where,
            "classification needs discrete labels; this target has non-integer numbers "
            "(use task: regression)",
        )


def scoring_task(scoring: str) -> str:
    """The task a scorer belongs to: silhouette -> clustering, REGRESSION_SCORERS ->
    regression, any other scikit-learn scorer -> classification."""
    if scoring == CLUSTER_SCORING:
        return "clustering"
    return "regression" if scoring in REGRESSION_SCORERS else "classification"


def default_scoring(task: str) -> str:
    """The scoring of a model that names none: the task's usual headline metric."""
    return {"classification": "accuracy", "regression": "r2", "clustering": CLUSTER_SCORING}[task]


def estimator_task(estimator) -> str:
    """classification for a classifier, regression for a regressor (scikit-learn's
    is_classifier / is_regressor), clustering for anything else."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classification"
    return "regression" if is_regressor(estimator) else "clustering"


def fits_dataset(model_task: str, dataset_task: str) -> bool:
    """A clustering model may also run on a classified table (its labels then only serve the
    test set's adjusted Rand index, as with `blobs`)."""
    return model_task == dataset_task or (model_task, dataset_task) == (
        "clustering",
        "classification",
    )


def check_model(estimator, scoring: str, dataset: str, dataset_task: str, where: str) -> str:
    """The model's task, once its estimator and scoring fit each other and the dataset's task;
    else a ConfigError at `where`.estimator or `where`.scoring (`where`: the model's key)."""
    kinds = {"classification": "a classifier", "regression": "a regressor"}
    name = type(estimator).__name__
    model_task = estimator_task(estimator)
    if not fits_dataset(model_task, dataset_task):
        kind = kinds.get(model_task, "not a classifier or regressor")
        raise ConfigError(
            f"{where}.estimator",
            f"{name} is {kind} but dataset {dataset!r} is a {dataset_task} task; use "
            f"{kinds.get(dataset_task, 'a clusterer')} (or set datasets.{dataset}.task)",
        )
    _check_scoring(scoring, model_task, dataset, f"{where}.scoring")
    if model_task == "clustering" and not hasattr(estimator, "predict"):
        raise ConfigError(
            f"{where}.estimator",
            f"{CLUSTER_SCORING} needs an estimator with predict(); {name} has none",
        )
    return model_task


def _check_scoring(scoring: str, model_task: str, dataset: str, where: str) -> None:
    from sklearn.metrics import get_scorer_names

    if scoring != CLUSTER_SCORING and scoring not in get_scorer_names():
        raise ConfigError(
            where,
            f"unknown scoring {scoring!r}; use a scikit-learn scorer name "
            f"(sklearn.metrics.get_scorer_names()) or {CLUSTER_SCORING!r}",
        )
    if scoring_task(scoring) != model_task:
        raise ConfigError(
            where,
            f"{scoring!r} is a {scoring_task(scoring)} scorer but this is a {model_task} "
            f"model (dataset {dataset!r}); use {SUGGESTED_SCORING[model_task]}",
        )


def folds(task: str, n_splits: int, seed: int):
    """Shuffled, seeded CV folds: stratified by class for classification, plain KFold for
    regression (a continuous target has no classes) and clustering."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = StratifiedKFold if task == "classification" else KFold
    return splitter(n_splits=n_splits, shuffle=True, random_state=seed)


def cluster_space(estimator, features):
    """The points a clusterer sees: a pipeline's transformed features, else the features."""
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline) and len(estimator) > 1:
        return estimator[:-1].transform(features)
    return features


def silhouette_scorer(estimator, features, labels=None):
    """Silhouette of the clusters in the space the clusterer sees; labels are never used.
    One cluster scores -1 (silhouette is undefined there)."""
    from sklearn.metrics import silhouette_score

    predicted = estimator.predict(features)
    if len(set(predicted)) < 2:
        return -1.0
    return float(silhouette_score(cluster_space(estimator, features), predicted))


def neg_inertia_scorer(estimator, features, labels=None):
    """Minus the within-cluster sum of squares on these points (greater is better)."""
    return float(estimator.score(features))


def _jsonable(value):
    import numpy as np

    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value


def test_scores(task: str, model, scoring: str, features, labels) -> dict:
    """Scores of a fitted model on the held-out test set, per task, plus its own `scoring`.

    regression: r2, rmse, mae (plain errors, lower is better); classification: accuracy,
    f1_macro, the labels and the confusion matrix (rows true, columns predicted); clustering:
    silhouette, inertia and, when the table has labels, the adjusted Rand index."""
    from sklearn import metrics

    if task == "clustering":
        scores = {
            "silhouette": silhouette_scorer(model, features),
            "inertia": -neg_inertia_scorer(model, features),
        }
        if labels is not None:
            predicted = model.predict(features)
            scores["adjusted_rand_index"] = float(metrics.adjusted_rand_score(labels, predicted))
        return scores
    predicted = model.predict(features)
    if task == "regression":
        scores = {
            "r2": float(metrics.r2_score(labels, predicted)),
            "rmse": float(metrics.root_mean_squared_error(labels, predicted)),
            "mae": float(metrics.mean_absolute_error(labels, predicted)),
        }
    else:
        classes = sorted(set(labels) | set(predicted))
        scores = {
            "accuracy": float(metrics.accuracy_score(labels, predicted)),
            "f1_macro": float(metrics.f1_score(labels, predicted, average="macro")),
            "labels": [_jsonable(c) for c in classes],
            "confusion_matrix": _jsonable(
                metrics.confusion_matrix(labels, predicted, labels=classes)
            ),
        }
    if scoring not in scores:
        scores[scoring] = float(metrics.get_scorer(scoring)(model, features, labels))
    return scores


def test_score(scoring: str, scores: dict) -> float:
    """The test score the leaderboard shows: the model's own scoring, in the scorer's sign."""
    return float(scores[scoring])


def rank(frame):
    """Leaderboard order: models grouped by task and scoring, highest CV score first (every
    scorer is greater-is-better, `neg_*` included), then the highest test score."""
    keys = [key for key in ("task", "scoring") if key in frame.columns]
    return frame.sort_values(
        [*keys, "best_score", "test_score"],
        ascending=[True] * len(keys) + [False, False],
        kind="stable",
        na_position="last",
    ).reset_index(drop=True)
