"""The generation loop of one evolution run: what runs in the SCOOP origin (or serially).

Checkpoints every `checkpoint_every` generations and resumes from a checkpoint of the same
run identity. Evaluations that fit models are journalled as they finish (beside the checkpoint,
{stem}.journal), so a run killed mid-generation redoes only the evaluations in flight. SIGTERM
or SIGUSR1 (a time limit, a cancel) write a checkpoint of the last finished generation at once
and end the process with status 128 + signal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time

import numpy as np
from deap import tools

from evosweep import journal as evaluation_journal
from evosweep.evolve import algorithms, checkpoint, problems
from evosweep.evolve.cache import FitnessCache
from evosweep.evolve.spec import CONTINUOUS_OBJECTIVES, RunResult, RunSpec
from evosweep.runtime.signals import stop_on_signals

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


def open_journal(run: RunSpec, fingerprint: str):
    """The run's journal of evaluations, or None: without a checkpoint there is no resume, and
    the continuous objectives cost microseconds, less than recording them."""
    if not run.checkpoint or run.objective["objective"] in CONTINUOUS_OBJECTIVES:
        return None
    return evaluation_journal.Journal(
        evaluation_journal.path_for(run.checkpoint), {"run": fingerprint}, what="evaluations"
    )


class _Stopper:
    """SIGTERM/SIGUSR1 in the origin: checkpoint the last finished generation at once, exit.

    `finished(...)` keeps that generation's state by reference: nothing in it changes until the
    next generation's evaluations are back, so a signal that arrives from then on until the next
    `finished` (the bookkeeping: selection, hall of fame, CMA-ES update, logbook) waits for it.
    The fitness cache only grows, so its state is its first `cache_size` entries.
    """

    def __init__(self, run: RunSpec, fingerprint: str, cache: FitnessCache):
        self.run, self.fingerprint, self.cache = run, fingerprint, cache
        self.snapshot: dict | None = None
        self.bookkeeping = False
        self.pending: int | None = None
        self._signals = contextlib.ExitStack()

    def install(self) -> None:
        self._signals.enter_context(stop_on_signals(on_signal=self._on_signal))

    def uninstall(self) -> None:
        self._signals.close()

    def finished(self, generation: int, algorithm, logbook, elapsed: float) -> None:
        self.snapshot = {
            "generation": generation,
            "algorithm": algorithm.state(),
            "rng": algorithms.rng_state(),
            "cache_size": len(self.cache),
            "logbook": logbook,
            "elapsed": elapsed,
        }
        self.bookkeeping = False
        if self.pending is not None:
            self._stop(self.pending)

    def _on_signal(self, signum: int) -> None:
        if self.bookkeeping:
            self.pending = signum
        else:
            self._stop(signum)

    def _stop(self, signum: int) -> None:
        name = signal.Signals(signum).name
        snapshot, journal = self.snapshot, self.cache.journal
        if snapshot is None or not self.run.checkpoint:
            log.warning("%s: stopping before the first generation finished", name)
        else:
            checkpoint.save(
                self.run.checkpoint,
                _checkpoint_state(
                    self.fingerprint,
                    snapshot["generation"],
                    snapshot["algorithm"],
                    snapshot["rng"],
                    self.cache.state(snapshot["cache_size"]),
                    snapshot["logbook"],
                    snapshot["elapsed"],
                ),
            )
            log.warning(
                "%s: checkpoint written at generation %d; stopping",
                name,
                snapshot["generation"],
            )
        if journal is not None:
            log.warning("%s: the journal %s keeps %d evaluations", name, journal.path, len(journal))
        for handler in logging.getLogger().handlers + log.handlers:
            handler.flush()
        # At once, from wherever the signal landed (inside SCOOP's scheduler too): the
        # checkpoint is on disk and every committed journal record is in its file.
        os._exit(128 + signum)


def evolve(run: RunSpec, mapper) -> RunResult:
    """The generation loop; resumes from `run.checkpoint` (and its journal) when they match."""
    problem, seed = run.problem, run.seed
    objective = problems.build(run.objective)
    fingerprint = checkpoint.fingerprint(run.identity())
    journal = open_journal(run, fingerprint)
    cache = FitnessCache(keep_genomes=objective.genome == "genes", journal=journal)
    stopper = _Stopper(run, fingerprint, cache)

    def evaluate(individuals) -> tuple[int, int]:
        genomes = [list(ind) for ind in individuals]
        results, hits = cache.evaluate(
            genomes, lambda batch: mapper(run.objective, batch, on_results=cache.journal_chunk)
        )
        stopper.bookkeeping = True  # until this generation's state is kept (stopper.finished)
        for individual, result in zip(individuals, results, strict=True):
            individual.fitness.values = result[: len(objective.weights)]
        return len(genomes) - hits, hits

    algorithm = algorithms.create(problem, objective, evaluate)
    saved = checkpoint.load(run.checkpoint, fingerprint) if run.checkpoint else None
    mapper.wait_for_workers()
    started = time.perf_counter()
    stopper.install()
    try:
        if saved:
            algorithm.restore(saved["algorithm"])
            algorithms.restore_rng(saved["rng"])
            cache.restore(saved["cache"])
            logbook, generation = saved["logbook"], saved["generation"]
            elapsed_before = saved["elapsed"]
            stopper.finished(generation, algorithm, logbook, elapsed_before)
        else:
            algorithms.seed_everything(seed)
            logbook, generation, elapsed_before = tools.Logbook(), -1, 0.0

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - started

        def record(gen, population, evaluations, hits):
            entry = {"generation": gen, "evaluations": evaluations, "cache_hits": hits}
            entry.update(_statistics(population, objective))
            entry["elapsed"] = elapsed()
            logbook.record(**entry)
            log.info("%s", _progress(entry, problem["generations"], objective))

        if generation < 0:
            population, evaluations, hits = algorithm.initialize()
            generation = 0
            if population:  # CMA-ES has no generation 0 to record
                record(0, population, evaluations, hits)
            stopper.finished(0, algorithm, logbook, elapsed())
        every = problem["checkpoint_every"]
        while generation < problem["generations"]:
            generation += 1
            population, evaluations, hits = algorithm.step()
            record(generation, population, evaluations, hits)
            # No checkpoint after the last generation: the outputs are written next.
            if run.checkpoint and generation % every == 0 and generation < problem["generations"]:
                checkpoint.save(
                    run.checkpoint,
                    _checkpoint_state(
                        fingerprint,
                        generation,
                        algorithm.state(),
                        algorithms.rng_state(),
                        cache.state(),
                        logbook,
                        logbook[-1]["elapsed"],
                    ),
                )
                log.info("checkpoint written at generation %d", generation)
            stopper.finished(generation, algorithm, logbook, elapsed())
    finally:
        stopper.uninstall()
        if journal is not None:
            journal.close()
    if journal is not None:
        log.info(
            "resumed %d of %d evaluations from the journal",
            cache.from_journal,
            cache.from_journal + cache.computed,
        )
    return _result(algorithm, cache, logbook, objective)


def _checkpoint_state(fingerprint, generation, algorithm, rng, cache, logbook, elapsed) -> dict:
    """What a checkpoint holds: enough to continue after `generation` as if never stopped."""
    return {
        "fingerprint": fingerprint,
        "generation": generation,
        "algorithm": algorithm,
        "rng": rng,
        "cache": cache,
        "logbook": logbook,
        "elapsed": elapsed,
    }


def _result(algorithm, cache: FitnessCache, logbook, objective) -> RunResult:
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
