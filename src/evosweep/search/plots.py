"""Search figures: the validation heatmap of a two-parameter grid, and for clustering the
silhouette/inertia elbow and the clusters of a few n_clusters."""

from __future__ import annotations

from pathlib import Path

from evosweep import space as search_space
from evosweep.figures import saved_figure


def _tick_label(value) -> str:
    return f"{value:.0e}" if isinstance(value, float) else str(value)


def plot_heatmap(frame, model, path: Path, dpi: int = 110) -> bool:
    """Mean CV score over a two-parameter grid, axes labelled with the grid's values."""
    names = list(model.space)
    if len(names) != 2:
        return False
    # As cv_results.csv spells the values (outputs.shown_params).
    grid = {
        name: ["null" if value is None else value for value in values]
        for name, values in search_space.grid(model.space).items()
    }
    rows, cols = names
    score = f"mean_test_{model.refit_metric}"
    table = frame.pivot_table(index=f"param_{rows}", columns=f"param_{cols}", values=score)
    table = table.reindex(index=grid[rows], columns=grid[cols])
    with saved_figure(path, dpi, figsize=(8, 6.5)) as (figure, axes):
        image = axes.imshow(
            table.to_numpy(dtype=float), origin="lower", cmap="viridis", aspect="auto"
        )
        axes.set_xticks(range(len(grid[cols])), [_tick_label(v) for v in grid[cols]], rotation=60)
        axes.set_yticks(range(len(grid[rows])), [_tick_label(v) for v in grid[rows]])
        axes.set_xlabel(cols)
        axes.set_ylabel(rows)
        axes.set_title(f"mean CV {model.scoring} ({model.cv}-fold)")
        figure.colorbar(image, ax=axes)
    return True


def plot_clustering(best_model, best_params: dict, frame, features, out_dir: Path, dpi: int = 110):
    """Silhouette and inertia against n_clusters; cluster plots with the real centroids."""
    from sklearn.base import clone

    if "param_n_clusters" not in frame:
        return
    ordered = frame.sort_values("param_n_clusters")
    ks = ordered["param_n_clusters"].astype(int).to_numpy()
    with saved_figure(out_dir / "elbow.png", dpi, figsize=(7, 4.5)) as (_, left):
        left.errorbar(
            ks, ordered["mean_test_silhouette"], yerr=ordered["std_test_silhouette"], marker="o"
        )
        left.set_xlabel("n_clusters")
        left.set_ylabel("silhouette (CV mean)", color="C0")
        right = left.twinx()
        right.plot(ks, -ordered["mean_test_neg_inertia"], marker="s", color="C1")
        right.set_ylabel("inertia (CV mean)", color="C1")
        left.set_title("Silhouette (higher is better) and elbow of inertia")

    best_k = int(best_params["n_clusters"])
    shown = sorted({int(ks[0]), best_k, int(ks[len(ks) // 2]), int(ks[-1])})
    points = features.to_numpy(dtype=float)
    size = (4 * len(shown), 4)
    clusters = saved_figure(out_dir / "clusters.png", dpi, size, ncols=len(shown), squeeze=False)
    with clusters as (_, panels):
        for axes, k in zip(panels[0], shown, strict=True):
            model = best_model if k == best_k else clone(best_model)
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


def history_frame(outcome, model):
    """A search's rows in the order their scores came: `seconds` from the start (estimated from
    the fit and score times spread over the workers where the strategy records none) and
    `best`, the best score so far (of the highest rung that has one, for halving and asha)."""
    import numpy as np
    import pandas as pd

    frame = outcome.cv_results
    score = frame[f"mean_test_{model.refit_metric}"].to_numpy(dtype=float)
    if outcome.history is not None:
        seconds = np.asarray(outcome.history, dtype=float)
    else:
        busy = (frame["mean_fit_time"] + frame["mean_score_time"]).to_numpy() * model.cv
        seconds = np.cumsum(busy) / max(1, outcome.workers)
    rungs = frame["iter"].to_numpy() if "iter" in frame else np.zeros(len(frame), dtype=int)
    order = np.argsort(seconds, kind="stable")
    best, top_rung, best_so_far = -np.inf, -1, []
    for rung, value in zip(rungs[order], score[order], strict=True):
        if rung > top_rung and np.isfinite(value):
            top_rung, best = rung, value
        elif rung == top_rung:
            best = np.fmax(best, value)
        best_so_far.append(best)
    return pd.DataFrame(
        {"evaluation": np.arange(1, len(frame) + 1), "seconds": seconds[order], "best": best_so_far}
    )


def plot_history(outcome, model, path: Path, dpi: int = 110) -> None:
    """Best score so far against evaluations (candidates, or candidates x rungs) and against
    wall time, side by side."""
    history = history_frame(outcome, model)
    estimated = " (estimated)" if outcome.history is None else ""
    figure_and_axes = saved_figure(path, dpi, figsize=(10, 4), ncols=2, sharey=True)
    with figure_and_axes as (figure, (by_count, by_time)):
        by_count.step(history["evaluation"], history["best"], where="post")
        by_count.set_xlabel(
            "evaluations (candidate x rung)" if "iter" in outcome.cv_results else "candidates"
        )
        by_count.set_ylabel(f"best mean CV {model.scoring} so far")
        by_time.step(history["seconds"], history["best"], where="post", color="C1")
        by_time.set_xlabel(f"seconds since the search started{estimated}")
        figure.suptitle(f"{model.name}: optimisation history ({model.strategy})")
