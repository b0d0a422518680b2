"""Scaling study: rerun one search and one evolution problem at several worker counts.

The upstream tutorial asked students to "compute the speedup" and never showed one; here each
run's wall time goes into scaling.csv (speedup and efficiency against the smallest count) and
speedup.png (measured against the ideal line).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

COLUMNS = ["stage", "name", "workers", "wall_seconds", "speedup", "efficiency", "evaluations"]


def time_search(model: str, spec: dict, seed: int, train, test, workers: int, **cluster):
    """Wall time of the full search of `model` on `workers` engines (outputs discarded)."""
    from evosweep.search import run

    with tempfile.TemporaryDirectory(prefix="evosweep-scaling-") as scratch:
        started = time.perf_counter()
        summary = run(model, spec, seed, train, test, scratch, workers, **cluster)
        wall = time.perf_counter() - started
    return {
        "stage": "search",
        "name": model,
        "workers": workers,
        "wall_seconds": wall,
        "evaluations": summary["n_fits"],
    }


def time_evolution(problem: str, spec: dict, seed: int, workers: int, **inputs):
    """Wall time of a fresh run of `problem` on `workers` SCOOP workers (never resumed)."""
    from evosweep.evolve.stage import run_problem

    with tempfile.TemporaryDirectory(prefix="evosweep-scaling-") as scratch:
        started = time.perf_counter()
        best = run_problem(
            problem,
            spec,
            seed,
            workers,
            Path(scratch) / "out",
            Path(scratch) / "checkpoint.pkl",
            **inputs,
        )
        wall = time.perf_counter() - started
    return {
        "stage": "evolve",
        "name": problem,
        "workers": workers,
        "wall_seconds": wall,
        "evaluations": best["evaluations"],
    }


def write_timing(timing: dict, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(timing, indent=2) + "\n")


def table(timing_files):
    """Speedup and efficiency of each stage relative to its smallest worker count."""
    import pandas as pd

    frame = pd.DataFrame([json.loads(Path(p).read_text()) for p in timing_files])
    frame = frame.sort_values(["stage", "workers"]).reset_index(drop=True)
    rows = []
    for _, group in frame.groupby("stage", sort=True):
        base = group.iloc[0]
        for _, row in group.iterrows():
            # Speedup against the smallest count, scaled so a 1-worker baseline reads as usual.
            speedup = base["wall_seconds"] / row["wall_seconds"] * base["workers"]
            rows.append(
                {**row.to_dict(), "speedup": speedup, "efficiency": speedup / row["workers"]}
            )
    result = pd.DataFrame(rows, columns=COLUMNS)
    return result.round({"wall_seconds": 2, "speedup": 3, "efficiency": 3})


def plot(frame, path, dpi: int = 110) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    counts = sorted(frame["workers"].unique())
    ax.plot(counts, counts, "k--", label="ideal (speedup = workers)")
    for (stage, name), group in frame.groupby(["stage", "name"]):
        ax.plot(group["workers"], group["speedup"], "o-", label=f"{stage}: {name}")
    ax.set_xlabel("workers (ipyparallel engines / SCOOP workers)")
    ax.set_ylabel("speedup over the smallest worker count")
    ax.set_xticks(counts)
    ax.set_title("Measured speedup")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
