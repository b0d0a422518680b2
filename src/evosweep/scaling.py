"""Scaling study: rerun one search and one evolution problem at several worker counts.

What is timed is the work once the workers are up (the search's fits, the evolution's
generations): starting engines or SCOOP workers is a fixed cost that no worker count changes,
so it is reported beside it (startup_seconds), not mixed into the speedup. Every count of a
stage is timed in one job, `repeats` rounds that alternate the counts' order (1, 2, then 2, 1,
...): a shared machine's slow minutes then hit every count alike instead of whichever count's
job ran then. scaling.csv reports each count's median with its range and the speedup against
the smallest count; speedup.png draws the medians with that spread against the ideal line.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from evosweep.figures import saved_figure

COLUMNS = [
    "stage",
    "name",
    "workers",
    "repeats",
    "wall_seconds",
    "wall_min",
    "wall_max",
    "startup_seconds",
    "speedup",
    "speedup_low",
    "speedup_high",
    "efficiency",
    "evaluations",
]
WHAT_IS_TIMED = {"search": "fits", "evolve": "generations"}

log = logging.getLogger(__name__)


def rounds(counts, repeats: int) -> list[int]:
    """The counts in timing order: ascending, then descending, and so on for `repeats` rounds."""
    ascending = sorted(set(counts))
    return [
        workers
        for round_index in range(repeats)
        for workers in (ascending if round_index % 2 == 0 else ascending[::-1])
    ]


def _study(stage: str, name: str, counts, repeats: int, timed_run) -> list[dict]:
    """`timed_run(scratch, workers)` returns (work seconds, start-up seconds, evaluations).
    One point per count, holding the timings of its repeats."""
    points = {
        workers: {
            "stage": stage,
            "name": name,
            "workers": workers,
            "walls": [],
            "startups": [],
            "evaluations": None,
        }
        for workers in sorted(set(counts))
    }
    order = rounds(counts, repeats)
    for number, workers in enumerate(order, start=1):
        with tempfile.TemporaryDirectory(prefix="evosweep-scaling-") as scratch:
            work, startup, evaluations = timed_run(Path(scratch), workers)
        point = points[workers]
        point["walls"].append(work)
        point["startups"].append(startup)
        point["evaluations"] = evaluations
        log.info(
            "%s %s, run %d of %d: %d worker(s), %s %.2f s, start-up %.2f s",
            stage,
            name,
            number,
            len(order),
            workers,
            WHAT_IS_TIMED[stage],
            work,
            startup,
        )
    return list(points.values())


def check_config(config: dict) -> None:
    """The scaling study's search model needs a scikit-learn search to time on the engines."""
    from evosweep.errors import ConfigError
    from evosweep.models import Model
    from evosweep.search.strategies import search_cv_strategies

    name = config["report"]["scaling_model"]
    if name is None:
        return
    model = Model.from_config(name, config["search"]["models"][name])
    timeable = search_cv_strategies()
    if model.strategy not in timeable:
        raise ConfigError(
            "report.scaling_model",
            f"{name!r} uses strategy {model.strategy!r}; the scaling study times a scikit-learn "
            f"search on ipyparallel engines, pick a model whose strategy is {' or '.join(timeable)}",
        )


def time_search(model, seed, train, counts, repeats: int = 1, **cluster) -> list[dict]:
    """Fit times of a models.Model's search (its refit included) on each count of engines,
    and the engines' start-up times; nothing is written."""
    from evosweep.engines import engine_cluster
    from evosweep.search import fit_search, make_search
    from evosweep.search.run import read_training_data

    features, labels = read_training_data(model, train)

    def timed_run(scratch: Path, workers: int):
        search = make_search(model, seed)
        started = time.perf_counter()
        with engine_cluster(workers, **cluster) as engines:
            ready = time.perf_counter()
            progress = fit_search(search, features, labels, engines)
            work = time.perf_counter() - ready
        return work, ready - started, progress.total

    return _study("search", model.name, counts, repeats, timed_run)


def time_evolution(
    problem,
    spec,
    seed,
    counts,
    repeats: int = 1,
    *,
    model=None,
    best_params_path=None,
    train=None,
) -> list[dict]:
    """Generation-loop times of fresh runs of `problem` on each count of SCOOP workers (never
    resumed), and the rest of each launch (SCOOP's start and stop); nothing is written."""
    from evosweep.evolve.launch import launch
    from evosweep.evolve.spec import build_run
    from evosweep.evolve.stage import load_best_params

    best_params = load_best_params(best_params_path) if best_params_path else None

    def timed_run(scratch: Path, workers: int):
        run = build_run(
            problem,
            spec,
            seed,
            workers,
            scratch / "checkpoint.pkl",
            model=model,
            best_params=best_params,
            train=train,
        )
        started = time.perf_counter()
        result = launch(run)
        launch_seconds = time.perf_counter() - started
        return result.wall_seconds, launch_seconds - result.wall_seconds, result.evaluations

    return _study("evolve", problem, counts, repeats, timed_run)


def write_timings(points: list[dict], path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(points, indent=2) + "\n")


def table(timing_files):
    """Median wall time and speedup of each point, with the range of its repeats."""
    import pandas as pd

    rows = []
    for timing in (point for path in timing_files for point in json.loads(Path(path).read_text())):
        walls, startups = timing.pop("walls"), timing.pop("startups")
        rows.append(
            {
                **timing,
                "repeats": len(walls),
                "wall_seconds": statistics.median(walls),
                "wall_min": min(walls),
                "wall_max": max(walls),
                "startup_seconds": statistics.median(startups),
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
    rounding.update({c: 2 for c in ("wall_seconds", "wall_min", "wall_max", "startup_seconds")})
    return pd.DataFrame(result, columns=COLUMNS).round(rounding)


def plot(frame, path, dpi: int = 110) -> None:
    with saved_figure(path, dpi, figsize=(6, 4.5)) as (_, ax):
        counts = sorted(frame["workers"].unique())
        ax.plot(counts, counts, "k--", label="ideal (speedup = workers)")
        for (stage, name), group in frame.groupby(["stage", "name"]):
            spread = [
                group["speedup"] - group["speedup_low"],
                group["speedup_high"] - group["speedup"],
            ]
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
        ax.set_title("Speedup of the work once workers are up (bars: repeats' range)")
        ax.grid(alpha=0.3)
        ax.legend()
