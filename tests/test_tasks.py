"""Tasks: inference from the target, scorers and estimators per task, folds, test scores,
leaderboard order and the held-out test set figures."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

from evosweep import tasks
from evosweep.errors import ConfigError
from evosweep.search import diagnostics


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        (pd.Series(["Adelie", "Gentoo", "Adelie"]), "classification"),
        (pd.Series([True, False, True]), "classification"),
        (pd.Series(list(range(20)) * 2), "classification"),  # 20 distinct integers
        (pd.Series(list(range(21)) * 2), "regression"),  # 21: too many to be classes
        (
            pd.Series([3750.0, 3800.0, np.nan, 3250.0] * 6 + list(np.arange(30.0) * 25)),
            "regression",
        ),
        (
            pd.Series([0.0, 1.0, np.nan, 1.0]),
            "classification",
        ),  # integral floats (a gap read by CSV)
        (pd.Series([0.5, 1.25, 2.0]), "regression"),
        (None, "clustering"),
    ],
)
def test_task_is_inferred_from_the_target(labels, task):
    inferred, why = tasks.infer(labels)
    assert inferred == task
    assert why


@pytest.mark.parametrize(
    ("task", "labels", "expected"),
    [
        ("regression", pd.Series(["a", "b"]), "regression needs a numeric target"),
        ("classification", pd.Series([0.5, 1.5]), "classification needs discrete labels"),
        ("classification", None, "classification needs a target column"),
    ],
)
def test_a_set_task_must_fit_the_target(task, labels, expected):
    with pytest.raises(ConfigError) as raised:
        tasks.check_target(task, labels, "datasets.d.task")
    assert str(raised.value).startswith("config error at datasets.d.task: ")
    assert expected in str(raised.value)


def test_set_tasks_that_fit_pass():
    tasks.check_target("regression", pd.Series([1, 2, 3]), "w")  # integers as a quantity
    tasks.check_target("classification", pd.Series([1.0, 2.0]), "w")
    tasks.check_target("clustering", pd.Series([0, 1]), "w")  # labels only score the test set


def test_regression_scorers_are_exactly_scikit_learns_regression_metrics():
    """The list is ours; this fails loudly if a pinned scikit-learn adds or moves a scorer
    (reads the scorer's private _score_func, in this test only)."""
    names = metrics.get_scorer_names()
    regression = {
        name
        for name in names
        if metrics.get_scorer(name)._score_func.__module__.endswith("._regression")
    }
    assert regression == tasks.REGRESSION_SCORERS
    for name in names:
        expected = "regression" if name in regression else "classification"
        assert tasks.scoring_task(name) == expected
    assert tasks.scoring_task("silhouette") == "clustering"


@pytest.mark.parametrize(
    ("estimator", "scoring", "dataset_task", "model_task"),
    [
        (SVC(), "accuracy", "classification", "classification"),
        (Ridge(), "r2", "regression", "regression"),
        (SVR(), "neg_root_mean_squared_error", "regression", "regression"),
        (KMeans(), "silhouette", "clustering", "clustering"),
        (KMeans(), "silhouette", "classification", "clustering"),  # labels serve the test ARI
        (make_pipeline(StandardScaler(), Ridge()), "r2", "regression", "regression"),
    ],
)
def test_models_that_fit_their_task(estimator, scoring, dataset_task, model_task):
    assert tasks.check_model(estimator, scoring, "d", dataset_task, "search.models.m") == model_task


@pytest.mark.parametrize(
    ("estimator", "scoring", "dataset_task", "expected"),
    [
        (
            SVC(),
            "accuracy",
            "regression",
            "search.models.m.estimator: SVC is a classifier but dataset 'd' is a regression "
            "task; use a regressor (or set datasets.d.task)",
        ),
        (
            Ridge(),
            "r2",
            "classification",
            "search.models.m.estimator: Ridge is a regressor but dataset 'd' is a "
            "classification task; use a classifier",
        ),
        (
            Ridge(),
            "accuracy",
            "regression",
            "search.models.m.scoring: 'accuracy' is a classification scorer but this is a "
            "regression model (dataset 'd'); use r2, neg_root_mean_squared_error, "
            "neg_mean_absolute_error",
        ),
        (
            LogisticRegression(),
            "r2",
            "classification",
            "search.models.m.scoring: 'r2' is a regression scorer but this is a "
            "classification model",
        ),
        (SVC(), "silhouette", "classification", "'silhouette' is a clustering scorer"),
        (KMeans(), "silhouette", "regression", "KMeans is not a classifier or regressor"),
        (KMeans(), "accuracy", "clustering", "'accuracy' is a classification scorer"),
        (Ridge(), "rmse", "regression", "search.models.m.scoring: unknown scoring 'rmse'"),
        (
            AgglomerativeClustering(),
            "silhouette",
            "clustering",
            "silhouette needs an estimator with predict(); AgglomerativeClustering has none",
        ),
    ],
)
def test_models_that_cannot_work_are_one_line_config_errors(
    estimator, scoring, dataset_task, expected
):
    with pytest.raises(ConfigError) as raised:
        tasks.check_model(estimator, scoring, "d", dataset_task, "search.models.m")
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_folds_per_task_are_shuffled_and_seeded():
    regression = tasks.folds("regression", 4, seed=7)
    assert type(regression) is KFold
    assert (regression.n_splits, regression.shuffle, regression.random_state) == (4, True, 7)
    assert type(tasks.folds("classification", 3, 7)) is StratifiedKFold
    assert type(tasks.folds("clustering", 3, 7)) is KFold
    assert [tasks.default_scoring(t) for t in tasks.TASKS] == ["accuracy", "r2", "silhouette"]


def test_regression_test_scores_are_r2_rmse_mae_and_its_scoring():
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    labels = 3 * features["a"] - features["b"] + rng.normal(scale=0.5, size=80)
    model = Ridge().fit(features, labels)
    predicted = model.predict(features)
    scores = tasks.test_scores("regression", model, "neg_mean_absolute_error", features, labels)
    assert scores == {
        "r2": metrics.r2_score(labels, predicted),
        "rmse": metrics.root_mean_squared_error(labels, predicted),
        "mae": metrics.mean_absolute_error(labels, predicted),
        "neg_mean_absolute_error": -metrics.mean_absolute_error(labels, predicted),
    }
    assert tasks.test_score("neg_mean_absolute_error", scores) == -scores["mae"]


def test_classification_test_scores_keep_todays_fields():
    features = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    labels = pd.Series(["a", "a", "a", "b", "b", "b"])
    model = LogisticRegression().fit(features, labels)
    scores = tasks.test_scores("classification", model, "balanced_accuracy", features, labels)
    assert scores["accuracy"] == 1.0 and scores["f1_macro"] == 1.0
    assert scores["labels"] == ["a", "b"]
    assert scores["confusion_matrix"] == [[3, 0], [0, 3]]
    assert scores["balanced_accuracy"] == 1.0


def test_clustering_scores_a_pipeline_in_the_space_it_clusters():
    points, truth = make_blobs(n_samples=90, centers=3, random_state=1)
    features = pd.DataFrame(points * [1000.0, 1.0], columns=["grams", "mm"])
    model = make_pipeline(StandardScaler(), KMeans(n_clusters=3, n_init=3, random_state=0))
    model.fit(features)
    scores = tasks.test_scores("clustering", model, "silhouette", features, truth)
    scaled = model[:-1].transform(features)
    expected = metrics.silhouette_score(scaled, model.predict(features))
    assert scores["silhouette"] == pytest.approx(expected, abs=1e-12)
    assert scores["adjusted_rand_index"] == metrics.adjusted_rand_score(
        truth, model.predict(features)
    )
    assert scores["inertia"] == pytest.approx(-model.score(features), abs=1e-9)


def test_leaderboard_puts_the_highest_score_first_for_every_scorer():
    frame = pd.DataFrame(
        {
            "model": ["ridge", "forest", "svc", "tree"],
            "scoring": ["neg_root_mean_squared_error"] * 2 + ["accuracy"] * 2,
            "best_score": [-310.5, -290.0, 0.95, 0.97],
            "test_score": [-300.0, -280.0, 0.96, 0.94],
        }
    )
    ranked = tasks.rank(frame)
    assert list(ranked["model"]) == ["tree", "svc", "forest", "ridge"]


def test_regression_figure_shows_every_test_row(tmp_path):
    rng = np.random.default_rng(1)
    features = pd.DataFrame({"a": rng.normal(size=40)})
    labels = 2 * features["a"] + rng.normal(scale=0.1, size=40)
    model = Ridge().fit(features, labels)
    written = diagnostics.plot_test_set("regression", model, features, labels, tmp_path, dpi=60)
    assert written == [tmp_path / "predicted_vs_actual.png"]
    assert written[0].read_bytes().startswith(b"\x89PNG")
    display = diagnostics.plot_predicted_vs_actual(
        model, features, labels, tmp_path / "again.png", dpi=60
    )
    assert np.array_equal(display.y_true, labels.to_numpy())
    assert np.array_equal(display.y_pred, model.predict(features))


def test_classification_figure_is_the_test_scores_confusion_matrix(tmp_path):
    features = pd.DataFrame({"x": np.arange(12.0)})
    labels = pd.Series(["a"] * 5 + ["b"] * 4 + ["c"] * 3)
    model = LogisticRegression().fit(features.iloc[::2], labels.iloc[::2])
    scores = tasks.test_scores("classification", model, "accuracy", features, labels)
    display = diagnostics.plot_confusion_matrix(
        model, features, labels, tmp_path / "confusion_matrix.png", dpi=60
    )
    assert display.confusion_matrix.tolist() == scores["confusion_matrix"]
    assert list(display.display_labels) == scores["labels"]
    assert (tmp_path / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    assert diagnostics.plot_test_set("clustering", model, features, None, tmp_path) == []
