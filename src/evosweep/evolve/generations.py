"""The generation loop of one evolution run: what runs in the SCOOP origin (or serially).

Checkpoints every `checkpoint_every` generations and resumes from a checkpoint of the same
run identity.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from deap import tools

from evosweep.evolve import algorithms, checkpoint, problems
from evosweep.evolve.cache import FitnessCache
from evosweep.evolve.spec import RunResult, RunSpec

log = logging.getLogger(__name__)


def _statistics(population, objective) -> dict:
    values = np.array([ind.fitness.values for ind in population], dtype=float)
    stats = {}
    for column, name in enumerate(objective.names):
        data = values[:, column]
        stats.update(
            {
                f"{name}_min": float(data.min()),
                f"{name}_avg": float(data.mean()),
                f"{name}_max": float(data.max()),
                f"{name}_std": float(data.std()),
            }
        )
    return stats


def _progress(record: dict, generations: int, objective) -> str:
    parts = []
    for name, weight in zip(objective.names, objective.weights, strict=True):
        best = record[f"{name}_max"] if weight > 0 else record[f"{name}_min"]
        parts.append(f"{name} best {best:.6g} avg {record[f'{name}_avg']:.6g}")
    return (
        f"generation {record['generation']}/{generations}: {record['evaluations']} evaluations, "
        f"{record['cache_hits']} cache hits, {'; '.join(parts)} ({record['elapsed']:.1f} s)"
    )


def evolve(run: RunSpec, mapper) -> RunResult:
    """The generation loop; resumes from `run.checkpoint` when it matches this run."""
    problem, seed = run.problem, run.seed
    objective = problems.build(run.objective)
    cache = FitnessCache(keep_genomes=objective.genome == "genes")

    def evaluate(individuals) -> tuple[int, int]:
        genomes = [list(ind) for ind in individuals]
        results, hits = cache.evaluate(genomes, lambda batch: mapper(run.objective, batch))
        for individual, result in zip(individuals, results, strict=True):
            individual.fitness.values = result[: len(objective.weights)]
        return len(genomes) - hits, hits

    algorithm = algorithms.create(problem, objective, evaluate)
    fingerprint = checkpoint.fingerprint(run.identity())
    saved = checkpoint.load(run.checkpoint, fingerprint) if run.checkpoint else None
    started = time.perf_counter()
    if saved:
        algorithm.restore(saved["algorithm"])
        algorithms.restore_rng(saved["rng"])
        cache.restore(saved["cache"])
        logbook, generation = saved["logbook"], saved["generation"]
        elapsed_before = saved["elapsed"]
    else:
        algorithms.seed_everything(seed)
        logbook, generation, elapsed_before = tools.Logbook(), -1, 0.0

    def record(gen, population, evaluations, hits):
        entry = {"generation": gen, "evaluations": evaluations, "cache_hits": hits}
        entry.update(_statistics(population, objective))
        entry["elapsed"] = elapsed_before + time.perf_counter() - started
        logbook.record(**entry)
        log.info("%s", _progress(entry, problem["generations"], objective))

    if generation < 0:
        population, evaluations, hits = algorithm.initialize()
        generation = 0
        if population:  # CMA-ES has no generation 0 to record
            record(0, population, evaluations, hits)
    every = problem["checkpoint_every"]
    while generation < problem["generations"]:
        generation += 1
        population, evaluations, hits = algorithm.step()
        record(generation, population, evaluations, hits)
        # No checkpoint after the last generation: the outputs are written next.
        if run.checkpoint and generation % every == 0 and generation < problem["generations"]:
            checkpoint.save(
                run.checkpoint,
                {
                    "fingerprint": fingerprint,
                    "generation": generation,
                    "algorithm": algorithm.state(),
                    "rng": algorithms.rng_state(),
                    "cache": cache.state(),
                    "logbook": logbook,
                    "elapsed": logbook[-1]["elapsed"],
                },
            )
            log.info("checkpoint written at generation %d", generation)
    return RunResult(
        logbook=list(logbook),
        hall=[(list(ind), tuple(ind.fitness.values)) for ind in algorithm.hall],
        population=[(list(ind), tuple(ind.fitness.values)) for ind in algorithm.population],
        evaluated=cache.evaluated(),
        objective_names=list(objective.names),
        weights=list(objective.weights),
        evaluations=int(sum(entry["evaluations"] for entry in logbook)),
        cache_hits=int(sum(entry["cache_hits"] for entry in logbook)),
        unique_evaluations=len(cache),
        wall_seconds=logbook[-1]["elapsed"] if len(logbook) else 0.0,
    )
