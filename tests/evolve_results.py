"""Evolution outputs without what differs between equal runs (timings, worker counts)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

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
