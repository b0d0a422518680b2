"""Resources: wall time, CPU time and peak memory of every job, from Snakemake's benchmark files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evosweep.figures import saved_figure

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["stage", "job", "wall_seconds", "cpu_seconds", "max_rss_mb", "mean_load"]


def job_name(path: Path) -> tuple[str, str]:
    """benchmarks/search/svc.tsv -> ('search', 'svc'); benchmarks/leaderboard.tsv -> ('leaderboard', '')."""
    path = Path(path)
    parts = path.with_suffix("").parts
    if "benchmarks" in parts:
        parts = parts[parts.index("benchmarks") + 1 :]
    if len(parts) == 1:
        return parts[0], ""
    return parts[0], "/".join(parts[1:])


def collect(benchmark_files) -> pd.DataFrame:
    """One row per job; a job benchmarked with `repeat` keeps its mean."""
    import pandas as pd

    rows = []
    for path in benchmark_files:
        table = pd.read_csv(path, sep="\t")
        stage, job = job_name(path)
        rows.append(
            {
                "stage": stage,
                "job": job,
                "wall_seconds": round(float(table["s"].mean()), 2),
                "cpu_seconds": round(float(table["cpu_time"].mean()), 2),
                "max_rss_mb": round(
                    float(pd.to_numeric(table["max_rss"], errors="coerce").max()), 1
                ),
                "mean_load": round(float(table["mean_load"].mean()), 1),
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["stage", "job"]).reset_index(drop=True)


def plot(frame, path, dpi: int = 110) -> None:
    """Two horizontal bar charts: wall vs CPU time, and peak memory, per job."""
    labels = [f"{s}/{j}" if j else s for s, j in zip(frame["stage"], frame["job"], strict=True)]
    height = max(2.5, 0.35 * len(labels) + 1.2)
    figure_and_axes = saved_figure(path, dpi, figsize=(11, height), ncols=2, sharey=True)
    with figure_and_axes as (_, (time_ax, mem_ax)):
        positions = range(len(labels))
        time_ax.barh([p + 0.2 for p in positions], frame["wall_seconds"], 0.4, label="wall")
        time_ax.barh([p - 0.2 for p in positions], frame["cpu_seconds"], 0.4, label="CPU")
        time_ax.set_yticks(list(positions), labels)
        time_ax.set_xlabel("seconds")
        time_ax.set_title("Time per job (CPU > wall means parallel work)")
        time_ax.legend(loc="lower right")
        mem_ax.barh(list(positions), frame["max_rss_mb"], 0.6, color="tab:green")
        mem_ax.set_xlabel("peak resident memory (MB)")
        mem_ax.set_title("Peak memory per job")
