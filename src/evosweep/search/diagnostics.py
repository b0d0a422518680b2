"""Held-out test set figures of a fitted model: predicted vs actual (regression) and the
confusion matrix (classification), drawn by scikit-learn's own displays."""

from __future__ import annotations

from pathlib import Path

from evosweep.figures import saved_figure

PLOTS = {"regression": "predicted_vs_actual.png", "classification": "confusion_matrix.png"}


def plot_predicted_vs_actual(model, features, labels, path: Path, dpi: int = 110):
    """Each test row's prediction against its true value, with the diagonal of a perfect
    model; returns scikit-learn's PredictionErrorDisplay."""
    from sklearn.metrics import PredictionErrorDisplay, r2_score

    predicted = model.predict(features)
    with saved_figure(path, dpi, figsize=(6, 6)) as (_, axes):
        display = PredictionErrorDisplay.from_predictions(
            labels, predicted, kind="actual_vs_predicted", ax=axes, subsample=None
        )
        r2 = r2_score(labels, predicted)
        axes.set_title(f"Held-out test set: predicted vs actual (r2 {r2:.3f})")
    return display


def plot_confusion_matrix(model, features, labels, path: Path, dpi: int = 110):
    """Counts of true (rows) against predicted (columns) classes on the test set, classes in
    sorted order as in test_scores.json; returns scikit-learn's ConfusionMatrixDisplay."""
    from sklearn.metrics import ConfusionMatrixDisplay

    predicted = model.predict(features)
    classes = sorted(set(labels) | set(predicted))
    size = max(5.0, 0.5 * len(classes) + 3)
    with saved_figure(path, dpi, figsize=(size, size)) as (_, axes):
        display = ConfusionMatrixDisplay.from_predictions(
            labels, predicted, labels=classes, ax=axes, colorbar=False, xticks_rotation="vertical"
        )
        axes.set_title("Held-out test set: confusion matrix")
    return display


def plot_test_set(task: str, model, features, labels, out_dir: Path, dpi: int = 110) -> list[Path]:
    """The task's test-set figure in `out_dir` (none for clustering); returns the paths."""
    if task not in PLOTS:
        return []
    path = Path(out_dir) / PLOTS[task]
    draw = plot_predicted_vs_actual if task == "regression" else plot_confusion_matrix
    draw(model, features, labels, path, dpi)
    return [path]
