"""The evolutionary strategy: a genetic algorithm over the model's search space, run by the
evolution stage on SCOOP workers and scored with the same folds and scorer as the grid."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from evosweep import models
from evosweep import space as search_space
from evosweep.search.outputs import SearchOutcome

log = logging.getLogger(__name__)


def ga_problem(spec: dict) -> dict:
    """The model's `evolution` settings as an `evolve.problems`-shaped GA entry."""
    return {
        **spec["evolution"],
        "algorithm": "ga",
        "objective": "hyperparameters",
        "cv": spec["cv"],
        "chunksize": None,
    }


def run_evolutionary(
    name: str, spec: dict, seed: int, train_path, workers: int, checkpoint, out_dir, map_mode
) -> SearchOutcome:
    from evosweep.evolve import outputs
    from evosweep.evolve.launch import launch
    from evosweep.evolve.spec import build_run

    started = time.perf_counter()
    run = build_run(name, ga_problem(spec), seed, workers, checkpoint, model=spec, train=train_path)
    log.info("evolutionary search %s: GA over %s, %d worker(s)", name, list(spec["space"]), workers)
    result = launch(run, map_mode)
    outputs.write_logbook(result, Path(out_dir) / "logbook.csv")
    frame = candidates_frame(spec, result.evaluated)
    best_genome, _ = result.best()
    best = next(i for i, (genome, _) in enumerate(result.evaluated) if genome == best_genome)
    best_params = frame["params"][best]
    return SearchOutcome(
        cv_results=frame.assign(params=frame["params"].map(json.dumps)),
        best_params=best_params,
        best_model=models.build_estimator(name, spec, seed, best_params),
        best_score=frame["mean_test_score"][best],
        best_score_std=frame["std_test_score"][best],
        n_candidates=len(frame),
        n_fits=len(frame) * spec["cv"],
        wall_seconds=time.perf_counter() - started,
        workers=result.workers,
        extra={"evaluations": result.evaluations, "cache_hits": result.cache_hits},
        float_format="%.10g",
    )


def candidates_frame(spec: dict, evaluated: list):
    """One row per evaluated candidate, in evaluation order, ranked like scikit-learn's."""
    import pandas as pd

    genes = search_space.genes(spec["space"])
    rows = []
    for genome, (mean, std) in evaluated:
        params = search_space.decode(genes, genome)
        rows.append(
            {
                **{f"param_{k}": v for k, v in params.items()},
                "params": params,
                "mean_test_score": mean,
                "std_test_score": std,
            }
        )
    frame = pd.DataFrame(rows)
    frame["rank_test_score"] = (
        frame["mean_test_score"].rank(ascending=False, method="min").astype(int)
    )
    return frame
