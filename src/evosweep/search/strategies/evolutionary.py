"""Evolutionary: a genetic algorithm over the model's space, run by the evolution stage on SCOOP
workers and scored with the same folds and scorer as the grid."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from evosweep import space as search_space
from evosweep.errors import ConfigError
from evosweep.search.outputs import SearchOutcome
from evosweep.search.strategy import Strategy

log = logging.getLogger(__name__)


class Evolutionary(Strategy):
    uses_engines = False

    def check(self, model) -> None:
        search_space.genes(model.space, model.where("space"))
        evolution = model.evolution
        if evolution["tournament"] > evolution["population"]:
            raise ConfigError(
                model.where("evolution.tournament"),
                f"tournament size {evolution['tournament']} exceeds the population "
                f"{evolution['population']}",
            )

    def run(self, job) -> SearchOutcome:
        with tempfile.TemporaryDirectory() as scratch:
            # The SCOOP run keeps its files beside the checkpoint: without one, they go to a
            # directory of their own (and no resume).
            state = job.checkpoint or Path(scratch) / f"{job.model.name}.pkl"
            outcome = run_evolutionary(job, state)
        outcome.best_model.fit(job.features, job.labels)
        return outcome

    def plot(self, job, outcome) -> None:
        """No figures: the GA's progress is its logbook.csv, which `run` writes."""


def ga_problem(model) -> dict:
    """The model's `evolution` settings as an `evolve.problems`-shaped GA entry."""
    return {
        **model.evolution,
        "algorithm": "ga",
        "objective": "hyperparameters",
        "cv": model.cv,
        "chunksize": None,
    }


def run_evolutionary(job, checkpoint) -> SearchOutcome:
    from evosweep.evolve import outputs
    from evosweep.evolve.launch import launch
    from evosweep.evolve.spec import build_run

    model = job.model
    started = time.perf_counter()
    problem = ga_problem(model)
    run = build_run(
        model.name, problem, job.seed, job.workers, checkpoint, model=model, train=job.train_path
    )
    log.info(
        "evolutionary search %s: GA over %s, %d worker(s)",
        model.name,
        list(model.space),
        job.workers,
    )
    result = launch(run, job.map_mode)
    outputs.write_logbook(result, Path(job.out_dir) / "logbook.csv")
    frame = candidates_frame(model, result.evaluated)
    best_genome, _ = result.best()
    best = next(i for i, (genome, _) in enumerate(result.evaluated) if genome == best_genome)
    best_params = frame["params"][best]
    return SearchOutcome(
        cv_results=frame.assign(params=frame["params"].map(json.dumps)),
        best_params=best_params,
        best_model=model.build(job.seed, best_params),
        best_score=frame["mean_test_score"][best],
        best_score_std=frame["std_test_score"][best],
        n_candidates=len(frame),
        n_fits=len(frame) * model.cv,
        wall_seconds=time.perf_counter() - started,
        workers=result.workers,
        extra={"evaluations": result.evaluations, "cache_hits": result.cache_hits},
        float_format="%.10g",
    )


def candidates_frame(model, evaluated: list):
    """One row per evaluated candidate, in evaluation order, ranked like scikit-learn's."""
    import pandas as pd

    genes = search_space.genes(model.space)
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
