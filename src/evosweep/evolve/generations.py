"""The generation loop of one evolution run: what runs in the SCOOP origin (or serially).

Checkpoints every `checkpoint_every` generations and resumes from a checkpoint of the same
run identity. Evaluations that fit models are journalled as they finish (beside the checkpoint,
{stem}.journal), so a run killed mid-generation redoes only the evaluations in flight. A stop
signal (SIGTERM, SIGINT, SIGUSR1: a time limit, a cancel) writes a checkpoint of the last
finished generation at once and ends the process with status 128 + signal.
"""

from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class RunState:
    """Where a run stands after `generation`: enough to continue as if it had never stopped.

    A snapshot holds the algorithm's state and the logbook by reference: nothing in them changes
    until the next generation's evaluations are back, and a stop signal that arrives from then on
    waits for the next snapshot (_Stopper). The fitness cache only grows, so its state is its
    first `cache_size` entries."""

    fingerprint: str
    generation: int = -1  # -1: not even generation 0 has run
    algorithm: dict | None = None
    rng: dict | None = None
    cache_size: int = 0
    logbook: tools.Logbook = dataclasses.field(default_factory=tools.Logbook)
    elapsed: float = 0.0

    @classmethod
    def begin(cls, fingerprint: str, seed: int, saved: dict | None, algorithm, cache) -> RunState:
        """The checkpoint's state, restored into the algorithm, the RNGs and the cache; without
        one, a fresh state with the RNGs seeded."""
        if not saved:
            algorithms.seed_everything(seed)
            return cls(fingerprint)
        algorithm.restore(saved["algorithm"])
        algorithms.restore_rng(saved["rng"])
        cache.restore(saved["cache"])
        return cls(
            fingerprint,
            saved["generation"],
            saved["algorithm"],
            saved["rng"],
            len(cache),
            saved["logbook"],
            saved["elapsed"],
        )

    def snapshot(self, generation: int, algorithm, cache: FitnessCache, elapsed: float):
        """This run's state once `generation` is finished."""
        return dataclasses.replace(
            self,
            generation=generation,
            algorithm=algorithm.state(),
            rng=algorithms.rng_state(),
            cache_size=len(cache),
            elapsed=elapsed,
        )

    def save(self, path, cache: FitnessCache) -> None:
        checkpoint.save(
            path,
            {
                "fingerprint": self.fingerprint,
                "generation": self.generation,
                "algorithm": self.algorithm,
                "rng": self.rng,
                "cache": cache.state(self.cache_size),
                "logbook": self.logbook,
                "elapsed": self.elapsed,
            },
        )


class _Stopper:
    """A stop signal in the origin: checkpoint the last finished generation at once, exit.

    A signal that arrives while a generation is being booked (from its evaluations' return to
    its snapshot: selection, hall of fame, CMA-ES update, logbook) waits for the snapshot."""

    def __init__(self, run: RunSpec, cache: FitnessCache):
        self.run, self.cache = run, cache
        self.state: RunState | None = None
        self.bookkeeping = False
        self.pending: int | None = None

    def finished(self, state: RunState) -> None:
        self.state = state
        self.bookkeeping = False
        if self.pending is not None:
            self._stop(self.pending)

    def on_signal(self, signum: int) -> None:
        if self.bookkeeping:
            self.pending = signum
        else:
            self._stop(signum)

    def _stop(self, signum: int) -> None:
        name = signal.Signals(signum).name
        state, journal = self.state, self.cache.journal
        if state is None or not self.run.checkpoint:
            log.warning("%s: stopping before the first generation finished", name)
        else:
            state.save(self.run.checkpoint, self.cache)
            log.warning("%s: checkpoint written at generation %d; stopping", name, state.generation)
        if journal is not None:
            log.warning("%s: the journal %s keeps %d evaluations", name, journal.path, len(journal))
        for handler in logging.getLogger().handlers + log.handlers:
            handler.flush()
        # At once, from wherever the signal landed (inside SCOOP's scheduler too): the
        # checkpoint is on disk and every committed journal record is in its file.
        os._exit(128 + signum)


class _Clock:
    """Seconds the run has taken, including those before a resume."""

    def __init__(self, before: float):
        self.before, self.started = before, time.perf_counter()

    def __call__(self) -> float:
        return self.before + time.perf_counter() - self.started


def evolve(run: RunSpec, mapper) -> RunResult:
    """The generation loop; resumes from `run.checkpoint` (and its journal) when they match."""
    objective = problems.build(run.objective)
    fingerprint = checkpoint.fingerprint(run.identity())
    journal = open_journal(run, fingerprint)
    cache = FitnessCache(keep_genomes=objective.genome == "genes", journal=journal)
    stopper = _Stopper(run, cache)
    evaluate = _evaluator(run, mapper, cache, objective, stopper)
    algorithm = algorithms.create(run.problem, objective, evaluate)
    saved = checkpoint.load(run.checkpoint, fingerprint) if run.checkpoint else None
    mapper.wait_for_workers()
    try:
        with stop_on_signals(on_signal=stopper.on_signal):
            state = RunState.begin(fingerprint, run.seed, saved, algorithm, cache)
            if saved:
                stopper.finished(state)
            state = _generations(run, algorithm, cache, objective, state, stopper)
    finally:
        if journal is not None:
            journal.close()
    if journal is not None:
        log.info(
            "resumed %d of %d evaluations from the journal",
            cache.from_journal,
            cache.from_journal + cache.computed,
        )
    return _result(algorithm, cache, state.logbook, objective)


def _evaluator(run: RunSpec, mapper, cache: FitnessCache, objective, stopper: _Stopper):
    """What the algorithm calls to evaluate individuals: through the cache (and journal), then
    the map; sets their fitness and returns (evaluations, cache hits)."""

    def evaluate(individuals) -> tuple[int, int]:
        genomes = [list(ind) for ind in individuals]
        results, hits = cache.evaluate(
            genomes, lambda batch: mapper(run.objective, batch, on_results=cache.journal_chunk)
        )
        stopper.bookkeeping = True  # until this generation's snapshot (stopper.finished)
        for individual, result in zip(individuals, results, strict=True):
            individual.fitness.values = result[: len(objective.weights)]
        return len(genomes) - hits, hits

    return evaluate


def _generations(run: RunSpec, algorithm, cache, objective, state: RunState, stopper) -> RunState:
    """Generation 0 (unless resumed past it), then the others; returns the last state."""
    generations, every = run.problem["generations"], run.problem["checkpoint_every"]
    clock = _Clock(state.elapsed)
    if state.generation < 0:
        outcome = algorithm.initialize()
        if outcome[0]:  # CMA-ES has no generation 0 to record
            _record(state.logbook, 0, outcome, objective, generations, clock())
        state = state.snapshot(0, algorithm, cache, clock())
        stopper.finished(state)
    while state.generation < generations:
        generation = state.generation + 1
        _record(state.logbook, generation, algorithm.step(), objective, generations, clock())
        state = state.snapshot(generation, algorithm, cache, clock())
        # No checkpoint after the last generation: the outputs are written next.
        if run.checkpoint and generation % every == 0 and generation < generations:
            state.save(run.checkpoint, cache)
            log.info("checkpoint written at generation %d", generation)
        stopper.finished(state)
    return state


def _record(logbook, generation: int, outcome, objective, generations: int, elapsed: float):
    """One generation's line of the logbook (and of the log), from algorithm's (population,
    evaluations, cache hits)."""
    population, evaluations, hits = outcome
    entry = {"generation": generation, "evaluations": evaluations, "cache_hits": hits}
    entry.update(_statistics(population, objective))
    entry["elapsed"] = elapsed
    logbook.record(**entry)
    log.info("%s", _progress(entry, generations, objective))


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
