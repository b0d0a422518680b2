"""Search stage: scikit-learn searches whose fits run on ipyparallel engines.

check_model() validates a model spec (estimator path, fixed params, space vs strategy) without
fitting anything; run() performs one model's search and writes its outputs; leaderboard()
gathers every model's summary.json.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

from evosweep import space as search_space
from evosweep.errors import ConfigError

log = logging.getLogger("evosweep")

STRATEGIES = ("grid", "random", "halving")
CLUSTER_SCORING = "silhouette"
TIMING_COLUMNS = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")
SUMMARY_KEYS = (
    "model",
    "strategy",
    "scoring",
    "best_score",
    "best_score_std",
    "test_score",
    "n_candidates",
    "n_fits",
    "wall_seconds",
    "workers",
)


# ---------------------------------------------------------------------------------------------
# Checking and building (no fits)
# ---------------------------------------------------------------------------------------------


def _where(name: str, key: str | None = None) -> str:
    return f"search.models.{name}" + (f".{key}" if key else "")


def estimator_class(name: str, spec: dict):
    """Import the dotted `estimator` path; a one-line ConfigError if it is not an estimator."""
    path = spec["estimator"]
    module_name, _, class_name = path.rpartition(".")
    where = _where(name, "estimator")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"config error at {where}: cannot import module {module_name!r} of {path!r} ({error})"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"config error at {where}: module {module_name!r} has no {class_name!r}")
    if not (isinstance(cls, type) and hasattr(cls, "get_params") and hasattr(cls, "fit")):
        raise ConfigError(f"config error at {where}: {path!r} is not a scikit-learn estimator")
    return cls


def is_clusterer(spec: dict) -> bool:
    return spec.get("scoring") == CLUSTER_SCORING


def build_estimator(name: str, spec: dict, seed: int | None = None):
    """The estimator with its fixed params; unknown params are a ConfigError. A `random_state`
    the user did not fix is set to `seed`, so fits are reproducible whatever engine runs them."""
    cls = estimator_class(name, spec)
    try:
        valid = set(cls().get_params())
    except TypeError as error:
        raise ConfigError(
            f"config error at {_where(name, 'estimator')}: {spec['estimator']!r} cannot be built "
            f"without arguments ({error})"
        ) from None
    params = dict(spec.get("params") or {})
    for key, label in ((params, "params"), (spec["space"], "space")):
        unknown = sorted(set(key) - valid)
        if unknown:
            raise ConfigError(
                f"config error at {_where(name, label)}.{unknown[0]}: {spec['estimator']} has no "
                f"parameter {unknown[0]!r}; valid: {', '.join(sorted(valid))}"
            )
    if seed is not None and "random_state" in valid and "random_state" not in params:
        params["random_state"] = seed
    try:
        return cls(**params)
    except Exception as error:  # noqa: BLE001 - any constructor failure is the config's fault
        raise ConfigError(
            f"config error at {_where(name, 'params')}: {spec['estimator']}(**params) failed: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None


def search_space_for(name: str, spec: dict):
    """The space in the form the strategy needs; mixing that cannot work is a ConfigError."""
    where = _where(name, "space")
    strategy = spec.get("strategy", "grid")
    if strategy == "grid":
        return search_space.grid(spec["space"], where)
    if strategy in ("random", "halving"):
        return search_space.distributions(spec["space"], where)
    if strategy == "evolutionary":
        return search_space.genes(spec["space"], where)
    raise ConfigError(
        f"config error at {_where(name, 'strategy')}: unknown strategy {strategy!r}; "
        f"expected grid, random, halving or evolutionary"
    )


def check_model(name: str, spec: dict) -> None:
    """Everything that can be checked without data or fits: import, params, space, scoring."""
    estimator = build_estimator(name, spec)
    search_space_for(name, spec)
    if is_clusterer(spec):
        if not hasattr(estimator, "predict"):
            raise ConfigError(
                f"config error at {_where(name, 'scoring')}: silhouette needs an estimator with "
                f"predict(); {spec['estimator']} has none"
            )
    else:
        from sklearn.metrics import get_scorer

        try:
            get_scorer(spec.get("scoring", "accuracy"))
        except ValueError:
            raise ConfigError(
                f"config error at {_where(name, 'scoring')}: unknown scoring "
                f"{spec.get('scoring')!r}; use a scikit-learn scorer name or 'silhouette'"
            ) from None


def check_models(config: dict) -> None:
    """The expensive config check of the search stage (run once per config change)."""
    for name, spec in config.get("search", {}).get("models", {}).items():
        check_model(name, spec)


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


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
    """(scoring argument for the search, refit metric name)."""
    if is_clusterer(spec):
        return {"silhouette": silhouette_scorer, "neg_inertia": neg_inertia_scorer}, "silhouette"
    return spec.get("scoring", "accuracy"), True


def make_cv(spec: dict, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = KFold if is_clusterer(spec) else StratifiedKFold
    return splitter(n_splits=spec.get("cv", 5), shuffle=True, random_state=seed)


def make_search(name: str, spec: dict, seed: int, n_jobs: int | None = None):
    """The configured scikit-learn search object (not fitted)."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import (
        GridSearchCV,
        HalvingRandomSearchCV,
        RandomizedSearchCV,
    )

    estimator = build_estimator(name, spec, seed)
    space = search_space_for(name, spec)
    scoring, refit = scoring_for(spec)
    common = dict(cv=make_cv(spec, seed), n_jobs=n_jobs, verbose=1, error_score="raise")
    strategy = spec.get("strategy", "grid")
    if strategy == "grid":
        return GridSearchCV(estimator, space, scoring=scoring, refit=refit, **common)
    if strategy == "random":
        return RandomizedSearchCV(
            estimator,
            space,
            n_iter=spec.get("n_iter", 20),
            scoring=scoring,
            refit=refit,
            random_state=seed,
            **common,
        )
    if strategy == "halving":
        if isinstance(scoring, dict):
            raise ConfigError(
                f"config error at {_where(name, 'strategy')}: halving supports one metric; "
                f"silhouette models use grid or random"
            )
        return HalvingRandomSearchCV(
            estimator,
            space,
            n_candidates=spec.get("n_iter", 20),
            scoring=scoring,
            random_state=seed,
            **common,
        )
    raise ConfigError(
        f"config error at {_where(name, 'strategy')}: {strategy!r} is not run by the search rule"
    )


# ---------------------------------------------------------------------------------------------
# Progress: parse what scikit-learn and joblib print, log fits done / total, elapsed, ETA
# ---------------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressLog:
    """A text stream standing in for stdout/stderr during fit.

    scikit-learn prints "Fitting K folds for each of C candidates, totalling T fits" before each
    batch of fits (once for grid/random, once per halving iteration) and joblib prints
    "Done N tasks" / "Done N out of M" as results come back; both become log lines.
    """

    TOTAL = re.compile(r"totalling (\d+) fits")
    DONE = re.compile(r"Done\s+(\d+)")

    def __init__(self, logger: logging.Logger, min_interval: float = 2.0):
        self.logger = logger
        self.min_interval = min_interval
        self.started = time.perf_counter()
        self.total = 0  # fits announced so far
        self.finished_before = 0  # fits of earlier Parallel calls (halving iterations)
        self.current_total = 0
        self.done = 0
        self._last_logged = 0.0
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line)
        return len(text)

    def flush(self) -> None:
        pass

    def _line(self, line: str) -> None:
        if match := self.TOTAL.search(line):
            self.finished_before += self.current_total
            self.current_total = int(match.group(1))
            self.total += self.current_total
            self.logger.info("%s", line.strip())
        elif match := self.DONE.search(line):
            self.done = self.finished_before + int(match.group(1))
            now = time.perf_counter()
            if now - self._last_logged >= self.min_interval or self.done >= self.total:
                self._last_logged = now
                self.logger.info("%s", self.status())

    def status(self) -> str:
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else float("inf")
        percent = 100.0 * self.done / self.total if self.total else 0.0
        return (
            f"progress: {self.done}/{self.total} fits ({percent:.0f}%), "
            f"elapsed {_duration(elapsed)}, ETA {_duration(remaining)}"
        )


class _captured_output:
    """Send stdout and stderr through a ProgressLog for the duration of the block."""

    def __init__(self, progress: ProgressLog):
        self.progress = progress

    def __enter__(self):
        self.saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self.progress
        return self.progress

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self.saved
        return False


def fit_search(search, features, labels, logger: logging.Logger = log):
    """Fit `search` under the active joblib backend, logging progress."""
    from joblib import parallel_config

    progress = ProgressLog(logger)
    # verbose >= 10 makes joblib report every completed batch.
    with parallel_config(verbose=10), _captured_output(progress):
        search.fit(features, labels)
    return progress


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def cv_results_frame(search):
    """Every candidate, one row: params, mean/std test scores, fit/score times, ranks."""
    import pandas as pd

    frame = pd.DataFrame(search.cv_results_).drop(columns=["params"])
    split_columns = [c for c in frame.columns if re.match(r"split\d+_", c)]
    frame = frame.drop(columns=split_columns)
    for column in frame.columns:
        if column.startswith("param_"):
            frame[column] = frame[column].astype(object)
    return frame


def test_scores(search, spec: dict, features, labels) -> dict:
    """Scores of the refitted best model on the held-out test set."""
    from sklearn import metrics

    model = search.best_estimator_
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
        "labels": _jsonable(classes),
        "confusion_matrix": _jsonable(metrics.confusion_matrix(labels, predicted, labels=classes)),
    }
    scoring = spec.get("scoring", "accuracy")
    if scoring not in scores:
        scores[scoring] = float(metrics.get_scorer(scoring)(model, features, labels))
    return scores


def _tick_label(value) -> str:
    return f"{value:.0e}" if isinstance(value, float) else str(value)


def plot_heatmap(frame, spec: dict, refit_metric: str, path: Path, dpi: int = 110) -> bool:
    """Mean CV score over a two-parameter grid, axes labelled with the grid's values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(spec["space"])
    if spec.get("strategy", "grid") != "grid" or len(names) != 2:
        return False
    grid = search_space.grid(spec["space"])
    rows, cols = names
    score = f"mean_test_{refit_metric}" if refit_metric != "score" else "mean_test_score"
    table = frame.pivot_table(index=f"param_{rows}", columns=f"param_{cols}", values=score)
    table = table.reindex(index=grid[rows], columns=grid[cols])
    figure, axes = plt.subplots(figsize=(8, 6.5))
    image = axes.imshow(table.to_numpy(dtype=float), origin="lower", cmap="viridis", aspect="auto")
    axes.set_xticks(range(len(grid[cols])), [_tick_label(v) for v in grid[cols]], rotation=60)
    axes.set_yticks(range(len(grid[rows])), [_tick_label(v) for v in grid[rows]])
    axes.set_xlabel(cols)
    axes.set_ylabel(rows)
    axes.set_title(f"mean CV {spec.get('scoring', 'accuracy')} ({spec['cv']}-fold)")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return True


def plot_clustering(search, frame, spec: dict, features, out_dir: Path, dpi: int = 110) -> None:
    """Silhouette and inertia against n_clusters; cluster plots with the real centroids."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.base import clone

    if "param_n_clusters" not in frame:
        return
    ordered = frame.sort_values("param_n_clusters")
    ks = ordered["param_n_clusters"].astype(int).to_numpy()
    figure, left = plt.subplots(figsize=(7, 4.5))
    left.errorbar(
        ks, ordered["mean_test_silhouette"], yerr=ordered["std_test_silhouette"], marker="o"
    )
    left.set_xlabel("n_clusters")
    left.set_ylabel("silhouette (CV mean)", color="C0")
    right = left.twinx()
    right.plot(ks, -ordered["mean_test_neg_inertia"], marker="s", color="C1")
    right.set_ylabel("inertia (CV mean)", color="C1")
    left.set_title("Silhouette (higher is better) and elbow of inertia")
    figure.tight_layout()
    figure.savefig(out_dir / "elbow.png", dpi=dpi)
    plt.close(figure)

    best_k = int(search.best_params_["n_clusters"])
    shown = sorted({int(ks[0]), best_k, int(ks[len(ks) // 2]), int(ks[-1])})
    figure, panels = plt.subplots(1, len(shown), figsize=(4 * len(shown), 4), squeeze=False)
    points = features.to_numpy(dtype=float)
    for axes, k in zip(panels[0], shown, strict=True):
        model = search.best_estimator_ if k == best_k else clone(search.best_estimator_)
        if k != best_k:
            model.set_params(n_clusters=k).fit(features)
        labels = model.predict(features)
        # Centroids are the model's own cluster_centers_ rows (x and y of the same centroid).
        centers = model.cluster_centers_
        axes.scatter(points[:, 0], points[:, 1], c=labels, s=4, cmap="tab20")
        axes.scatter(centers[:, 0], centers[:, 1], c="black", marker="x", s=80)
        axes.set_title(f"n_clusters={k}" + (" (best)" if k == best_k else ""))
        axes.set_xlabel(features.columns[0])
        axes.set_ylabel(features.columns[1] if points.shape[1] > 1 else "")
    figure.tight_layout()
    figure.savefig(out_dir / "clusters.png", dpi=dpi)
    plt.close(figure)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(_jsonable(data), indent=2) + "\n")


def run(
    name: str,
    spec: dict,
    seed: int,
    train_path,
    test_path,
    out_dir,
    n_engines: int | None = None,
    logger: logging.Logger = log,
    dpi: int = 110,
    **cluster_options,
) -> dict:
    """One model's search on its own engine cluster; writes every output into `out_dir`.

    cluster_options go to engine_cluster (e.g. the Slurm job's tasks and cpus_per_task)."""
    import joblib

    from evosweep.data import read_split
    from evosweep.engines import engine_cluster

    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    search = make_search(name, spec, seed)  # config errors surface before any engine starts
    features, labels = read_split(train_path)
    if is_clusterer(spec):
        labels = None  # unsupervised: the labels of blobs are only used for the test ARI
    elif labels is None:
        raise ConfigError(
            f"config error at {_where(name, 'dataset')}: {spec['estimator']} needs labels, but "
            f"dataset {spec['dataset']!r} has none (use scoring: silhouette for clustering)"
        )
    started = time.perf_counter()
    keep_logs = out_dir / "engine-logs"
    with engine_cluster(n_engines, keep_logs_in=keep_logs, **cluster_options) as engines:
        search.n_jobs = engines.parallel_jobs
        with engines.joblib_backend():
            progress = fit_search(search, features, labels, logger)
        workers = engines.n_engines
    wall = time.perf_counter() - started
    logger.info(
        "%s; %d fits in %.1f s on %d engine(s)", progress.status(), progress.total, wall, workers
    )

    frame = cv_results_frame(search)
    frame.to_csv(out_dir / "cv_results.csv", index=False)
    _write_json(out_dir / "best_params.json", search.best_params_)
    joblib.dump(search.best_estimator_, out_dir / "best_model.joblib")
    test_features, test_labels = read_split(test_path)
    scores = test_scores(search, spec, test_features, test_labels)
    _write_json(out_dir / "test_scores.json", scores)

    refit_metric = "silhouette" if is_clusterer(spec) else "score"
    best = search.best_index_
    results = search.cv_results_
    summary = {
        "model": name,
        "strategy": spec.get("strategy", "grid"),
        "scoring": spec.get("scoring", "accuracy"),
        "best_score": float(results[f"mean_test_{refit_metric}"][best]),
        "best_score_std": float(results[f"std_test_{refit_metric}"][best]),
        "test_score": float(scores["silhouette" if is_clusterer(spec) else spec["scoring"]]),
        "n_candidates": int(len(results["params"])),
        "n_fits": int(progress.total),
        "wall_seconds": round(wall, 3),
        "workers": int(workers),
        "best_params": search.best_params_,
    }
    _write_json(out_dir / "summary.json", summary)

    plots = out_dir / "plots"
    plot_heatmap(frame, spec, refit_metric, plots / "heatmap.png", dpi)
    if is_clusterer(spec):
        plot_clustering(search, frame, spec, test_features, plots, dpi)
    logger.info(
        "best %s = %.4f +- %.4f with %s; test %s = %.4f",
        summary["scoring"],
        summary["best_score"],
        summary["best_score_std"],
        search.best_params_,
        summary["scoring"],
        summary["test_score"],
    )
    return summary


def leaderboard(summary_paths, out_path) -> Any:
    """One row per model from its summary.json, best CV score first within each scoring."""
    import pandas as pd

    rows = []
    for path in summary_paths:
        summary = json.loads(Path(path).read_text())
        rows.append({key: summary.get(key) for key in SUMMARY_KEYS})
    frame = pd.DataFrame(rows, columns=list(SUMMARY_KEYS))
    frame = frame.sort_values(["scoring", "best_score"], ascending=[True, False], kind="stable")
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_path, index=False)
    return frame
