"""Scaling study: rerun one search and one evolution problem at several worker counts.

Each point is timed `repeats` times (a shared machine's noise is not a speedup), and
scaling.csv reports the median wall time with its range and the speedup against the smallest
count; speedup.png draws the medians with that spread against the ideal line.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

COLUMNS = [
    "stage",
    "name",
    "workers",
    "repeats",
    "wall_seconds",
    "wall_min",
    "wall_max",
    "speedup",
    "speedup_low",
    "speedup_high",
    "efficiency",
    "evaluations",
]


def _repeat(stage: str, name: str, workers: int, repeats: int, timed_run) -> dict:
    walls, evaluations = [], None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="evosweep-scaling-") as scratch:
            started = time.perf_counter()
            evaluations = timed_run(Path(scratch))
            walls.append(time.perf_counter() - started)
    return {
        "stage": stage,
        "name": name,
        "workers": workers,
        "walls": walls,
        "evaluations": evaluations,
    }


def time_search(model, spec, seed, train, test, workers: int, repeats: int = 1, **cluster):
    """Wall times of the full search of `model` on `workers` engines (outputs discarded)."""
    from evosweep.search import run

    def timed_run(scratch: Path) -> int:
        return run(model, spec, seed, train, test, scratch, workers, **cluster)["n_fits"]

    return _repeat("search", model, workers, repeats, timed_run)


def time_evolution(problem, spec, seed, workers: int, repeats: int = 1, **inputs):
    """Wall times of fresh runs of `problem` on `workers` SCOOP workers (never resumed)."""
    from evosweep.evolve.stage import run_problem

    def timed_run(scratch: Path) -> int:
        best = run_problem(
            problem, spec, seed, workers, scratch / "out", scratch / "checkpoint.pkl", **inputs
        )
        return best["evaluations"]

    return _repeat("evolve", problem, workers, repeats, timed_run)


def write_timing(timing: dict, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(timing, indent=2) + "\n")


def table(timing_files):
    """Median wall time and speedup of each point, with the range of its repeats."""
    import pandas as pd

    rows = []
    for path in timing_files:
        timing = json.loads(Path(path).read_text())
        walls = timing.pop("walls")
        rows.append(
            {
                **timing,
                "repeats": len(walls),
                "wall_seconds": statistics.median(walls),
                "wall_min": min(walls),
                "wall_max": max(walls),
            }
        )
    frame = pd.DataFrame(rows).sort_values(["stage", "workers"]).reset_index(drop=True)
    result = []
    for _, group in frame.groupby("stage", sort=True):
        base = group.iloc[0]
        # Against the smallest count, scaled so a 1-worker baseline reads as usual.
        scale = base["wall_seconds"] * base["workers"]
        for _, row in group.iterrows():
            speedup = scale / row["wall_seconds"]
            result.append(
                {
                    **row.to_dict(),
                    "speedup": speedup,
                    "speedup_low": scale / row["wall_max"],
                    "speedup_high": scale / row["wall_min"],
                    "efficiency": speedup / row["workers"],
                }
            )
    rounding = {c: 3 for c in ("speedup", "speedup_low", "speedup_high", "efficiency")}
    rounding.update({c: 2 for c in ("wall_seconds", "wall_min", "wall_max")})
    return pd.DataFrame(result, columns=COLUMNS).round(rounding)


def plot(frame, path, dpi: int = 110) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    counts = sorted(frame["workers"].unique())
    ax.plot(counts, counts, "k--", label="ideal (speedup = workers)")
    for (stage, name), group in frame.groupby(["stage", "name"]):
        spread = [group["speedup"] - group["speedup_low"], group["speedup_high"] - group["speedup"]]
        ax.errorbar(
            group["workers"],
            group["speedup"],
            yerr=spread,
            marker="o",
            capsize=4,
            label=f"{stage}: {name} (median of {int(group['repeats'].max())})",
        )
    ax.set_xlabel("workers (ipyparallel engines / SCOOP workers)")
    ax.set_ylabel("speedup over the smallest worker count")
    ax.set_xticks(counts)
    ax.set_title("Measured speedup (bars: fastest to slowest repeat)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
