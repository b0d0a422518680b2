"""Evolution test data: a problem whose tasks reach the workers, and outputs without what
differs between equal runs (timings, worker counts)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

# CMA-ES on Rastrigin in chunks of 6 genomes: tasks really go to the workers, however cheap the
# objective is (worker_tasks = generations * lambda / 6).
RASTRIGIN = {
    "algorithm": "cma-es",
    "objective": "rastrigin",
    "dimensions": 6,
    "centroid": 5.0,
    "sigma": 5.0,
    "lambda": 24,
    "generations": 15,
    "chunksize": 6,
    "checkpoint_every": 5,
}
TIMINGS = ("elapsed", "wall_seconds", "workers", "worker_tasks")


def comparable(out: Path) -> dict:
    """best.json, logbook.csv and pareto.csv (if any) of a run, minus timings and worker counts."""
    best = {
        k: v for k, v in json.loads((out / "best.json").read_text()).items() if k not in TIMINGS
    }
    logbook = pd.read_csv(out / "logbook.csv").drop(columns=["elapsed"])
    files = {"best": best, "logbook": logbook.to_dict("list")}
    if (out / "pareto.csv").exists():
        files["pareto"] = (out / "pareto.csv").read_text()
    return files
