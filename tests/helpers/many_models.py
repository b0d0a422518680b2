"""A config of many tiny models over several datasets: how the workflow copes with a wide
sweep (planning time, Slurm jobs). Each model is a 2-candidate grid with 2 folds of a tree or
nearest-neighbours classifier (k-means on the unlabelled blobs), so its fits take milliseconds."""

from __future__ import annotations

DATASETS = {
    "iris": {"source": "sklearn:iris", "test_size": 0.3},
    "wine": {"source": "sklearn:wine", "test_size": 0.3},
    "breast_cancer": {"source": "sklearn:breast_cancer", "test_size": 0.3},
    "digits": {"source": "sklearn:digits", "test_size": 0.3},
    "blobs": {"source": "blobs", "n_samples": 300, "centers": 3, "test_size": 0.3},
}


def tiny_model(dataset: str, index: int) -> dict:
    """The index-th tiny model of `dataset`: trees and nearest neighbours in turn; k-means
    for blobs, a clustering task."""
    low = 1 + index // 2
    if dataset == "blobs":
        return {
            "dataset": dataset,
            "estimator": "sklearn.cluster.KMeans",
            "params": {"n_init": 1},
            "space": {"n_clusters": [low + 1, low + 2]},
            "cv": 2,
            "scoring": "silhouette",
        }
    if index % 2 == 0:
        estimator, knob = "sklearn.tree.DecisionTreeClassifier", "max_depth"
    else:
        estimator, knob = "sklearn.neighbors.KNeighborsClassifier", "n_neighbors"
    return {
        "dataset": dataset,
        "estimator": estimator,
        "space": {knob: [low, low + 1]},
        "cv": 2,
    }


def many_models_config(models_per_dataset: int = 20, engines: int | None = None) -> dict:
    """`models_per_dataset` tiny models on each of the five datasets (100 by default), no
    evolution and no scaling study."""
    models = {
        f"{dataset}_{index:02d}": tiny_model(dataset, index)
        for dataset in DATASETS
        for index in range(models_per_dataset)
    }
    return {
        "seed": 42,
        "datasets": {name: dict(spec) for name, spec in DATASETS.items()},
        "search": {"engines": engines, "models": models},
        "report": {"scaling_in_default": False},
    }
