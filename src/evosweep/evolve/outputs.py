"""Files of a finished evolution: logbook, best solution, Pareto front, convergence plot."""

from __future__ import annotations

import json
from pathlib import Path

from evosweep.evolve.spec import RunResult
from evosweep.figures import saved_figure


def write_json(path: str | Path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def logbook_frame(result: RunResult):
    import pandas as pd

    return pd.DataFrame(result.logbook)


def write_logbook(result: RunResult, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    logbook_frame(result).to_csv(path, index=False, float_format="%.10g")


def best_summary(name: str, problem: dict, result: RunResult, solution) -> dict:
    _, fitness = result.best()
    return {
        "problem": name,
        "algorithm": problem["algorithm"],
        "solution": solution,
        "fitness": dict(zip(result.objective_names, map(float, fitness), strict=True)),
        "generations": problem["generations"],
        "evaluations": result.evaluations,
        "cache_hits": result.cache_hits,
        "wall_seconds": round(result.wall_seconds, 3),
        "workers": result.workers,
        # Chunks shipped to SCOOP workers; 0 when every batch was too cheap to ship.
        "worker_tasks": result.worker_tasks,
    }


def write_pareto(result: RunResult, feature_names: list[str], path: str | Path):
    """Pareto front of feature selection: score, number of features and which ones."""
    import pandas as pd

    rows = []
    for bits, (score, count) in result.hall:
        selected = [name for name, bit in zip(feature_names, bits, strict=True) if bit]
        rows.append({"score": score, "n_features": int(count), "features": " ".join(selected)})
    frame = pd.DataFrame(rows, columns=["score", "n_features", "features"])
    frame = frame.sort_values(["n_features", "score"], kind="stable").reset_index(drop=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.10g")
    return frame


def plot_convergence(result: RunResult, title: str, path: str | Path, dpi: int = 110) -> None:
    """Per objective: the generation's best and the population average, labelled as such."""
    frame = logbook_frame(result)
    names, weights = result.objective_names, result.weights
    size = (7, 3.2 * len(names))
    with saved_figure(path, dpi, size, nrows=len(names), squeeze=False) as (_, axes_list):
        for axes, name, weight in zip(axes_list[:, 0], names, weights, strict=True):
            best_column = f"{name}_max" if weight > 0 else f"{name}_min"
            axes.plot(frame["generation"], frame[best_column], label="best of generation")
            axes.plot(frame["generation"], frame[f"{name}_avg"], label="population average")
            values = frame[[best_column, f"{name}_avg"]].to_numpy()
            if (values > 0).all() and values.max() > 20 * values.min():
                axes.set_yscale("log")  # benchmark functions fall over decades
            axes.set_xlabel("generation")
            axes.set_ylabel(f"{name} ({'maximised' if weight > 0 else 'minimised'})")
            axes.legend()
            axes.grid(alpha=0.3)
        axes_list[0, 0].set_title(title)


def plot_pareto(front, result: RunResult, title: str, path: str | Path, dpi: int = 110) -> None:
    with saved_figure(path, dpi, figsize=(7, 4.5)) as (_, axes):
        population = result.population
        axes.scatter(
            [f[1] for _, f in population],
            [f[0] for _, f in population],
            s=14,
            color="0.7",
            label="final population",
        )
        axes.step(
            front["n_features"], front["score"], where="post", marker="o", label="Pareto front"
        )
        axes.set_xlabel("number of features (minimised)")
        axes.set_ylabel("CV score (maximised)")
        axes.set_title(title)
        axes.legend()
        axes.grid(alpha=0.3)
