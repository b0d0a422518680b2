"""Map backends for fitness evaluation, with chunked dispatch.

Each task carries a chunk of genomes sized by the measured cost per genome: about
MIN_TASK_SECONDS of work, so cheap objectives (Rastrigin: a few microseconds each) are not
drowned by SCOOP's per-task round trip (about a millisecond), and no larger, so expensive ones
(a CV fit: about 0.1 s each) are spread finely and no worker sits idle while another finishes
a big last chunk. When a whole batch is not worth two tasks it is evaluated in the master: 2
workers then run the serial generation loop, SCOOP's start-up and shutdown aside. Results never
depend on the chunking: chunks are evaluated by the same pure function and reassembled in order.
"""

from __future__ import annotations

import logging
import time

from evosweep.errors import EvosweepError
from evosweep.evolve.problems import evaluate_chunk

MODES = ("scoop", "serial", "pool")
# Work (seconds) a task should carry to be worth shipping: the round trip then costs about 2 %.
# No more than that either: large chunks leave a worker idle behind the last one.
MIN_TASK_SECONDS = 0.05
# Genomes evaluated one by one in the master to learn the cost: a warm-up and two timings.
PROBE_GENOMES = 3
# How long the origin waits for the other SCOOP workers to be warm and take tasks (a Slurm step
# on another node may take a while); past that, it starts without them.
WORKERS_READY_SECONDS = 300.0

log = logging.getLogger(__name__)


# SCOOP workers report their tasks to the broker only every 25 s, and the broker forgets the
# tasks of a worker it has not heard from yet: in a worker's first 25 s, an origin that waits
# more than 2 s is told its task was lost and resends it, so the chunk runs twice ("Lost track
# of future"). Reporting every second avoids that. This module is imported at the top of every
# SCOOP entry point, i.e. on each worker before SCOOP starts its reporting thread.
STATUS_REPORT_SECONDS = 1.0


def tune_scoop() -> None:
    import scoop

    scoop.TIME_BETWEEN_STATUS_REPORTS = STATUS_REPORT_SECONDS


tune_scoop()


class ScoopNotRunning(EvosweepError):
    """The SCOOP map was requested outside `python -m scoop`."""


def scoop_is_running() -> bool:
    import scoop

    return bool(getattr(scoop, "IS_RUNNING", False))


def plan_chunks(n_items: int, workers: int, seconds_per_item: float | None, chunksize=None):
    """Chunk sizes for `n_items`; a single chunk means 'evaluate in the master'."""
    if n_items == 0:
        return []
    if chunksize:
        return [min(chunksize, n_items - start) for start in range(0, n_items, chunksize)]
    if workers <= 1 or seconds_per_item is None:
        return [n_items]
    useful_tasks = int(n_items * seconds_per_item / MIN_TASK_SECONDS)
    n_chunks = max(1, min(n_items, useful_tasks))
    # Sizes differ by at most one genome, so no chunk is left to run alone at the end.
    size, larger = divmod(n_items, n_chunks)
    return [size + 1] * larger + [size] * (n_chunks - larger)


class ChunkedMap:
    """Evaluate genomes with `spec`'s objective over a backend; learns the cost per genome."""

    def __init__(self, mode: str, workers: int = 1, chunksize: int | None = None):
        if mode not in MODES:
            raise EvosweepError(f"unknown map mode {mode!r}; expected one of {', '.join(MODES)}")
        if mode == "scoop" and not scoop_is_running():
            raise ScoopNotRunning(
                "evolve error: the SCOOP map needs SCOOP workers, but this process was not "
                "started by `python -m scoop` (SCOOP would silently run everything serially); "
                "launch with `python -m scoop -n N ...` or choose the serial map (--map serial)"
            )
        self.mode = mode
        self.workers = 1 if mode == "serial" else workers
        self.chunksize = chunksize
        self.seconds_per_item: float | None = None
        self.tasks_sent = 0
        self._pool = None
        if mode == "pool":
            import multiprocessing

            self._pool = multiprocessing.get_context("fork").Pool(self.workers)

    def wait_for_workers(self) -> None:
        """Under SCOOP, return once the other workers are warm (their objective built, see
        evolve.__main__) and take tasks: their one-off costs then stay out of the timed loop."""
        if self.mode != "scoop":
            return
        from evosweep.evolve import scoop_secure

        started = time.perf_counter()
        try:
            ready = scoop_secure.wait_for_workers(WORKERS_READY_SECONDS)
        except TimeoutError as error:
            log.warning("%s; starting with those that are", error)
            return
        waited = time.perf_counter() - started
        if ready:
            log.info("all %d SCOOP workers ready (waited %.1f s)", self.workers, waited)
        elif ready is False:
            log.warning("a SCOOP worker ended before it was ready; starting with the others")

    def close(self):
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __call__(self, spec: dict, genomes: list, on_results=None) -> list[tuple[float, ...]]:
        """Results of `genomes` in order; `on_results(genomes, results)` hears of each chunk as
        it finishes (a journal records them, so a kill loses only the chunks in flight)."""
        genomes = list(genomes)
        if not genomes:
            return []
        if self.seconds_per_item is None and self.mode != "serial" and not self.chunksize:
            # Probe the cost in the master before deciding how to split. The first genome pays
            # the one-off costs (building the objective, loading data, numpy's first calls), so
            # the next two are timed, and the faster counts (a context switch in one timing is
            # not the objective's cost).
            probes = [self._here(spec, [genome], on_results) for genome in genomes[:PROBE_GENOMES]]
            if len(probes) == PROBE_GENOMES:
                self._learn(min(seconds for _, seconds in probes[1:]), 1)
            results = [result for chunk_results, _ in probes for result in chunk_results]
            return results + self(spec, genomes[PROBE_GENOMES:], on_results)
        sizes = plan_chunks(len(genomes), self.workers, self.seconds_per_item, self.chunksize)
        chunks, start = [], 0
        for size in sizes:
            chunks.append(genomes[start : start + size])
            start += size
        if len(chunks) == 1 or self.mode == "serial":
            outputs = [self._here(spec, chunk, on_results) for chunk in chunks]
        else:
            outputs = self._dispatch(spec, chunks, on_results)
            self.tasks_sent += len(chunks)
        results = []
        for (chunk_results, seconds), chunk in zip(outputs, chunks, strict=True):
            self._learn(seconds, len(chunk))
            results.extend(chunk_results)
        return results

    @staticmethod
    def _here(spec, chunk, on_results):
        output = evaluate_chunk(spec, chunk)
        if on_results is not None:
            on_results(chunk, output[0])
        return output

    def _dispatch(self, spec, chunks, on_results=None):
        if self.mode == "scoop":
            from scoop import futures

            submitted = {futures.submit(evaluate_chunk, spec, chunk): chunk for chunk in chunks}
            if on_results is not None:
                for future in futures.as_completed(submitted):
                    on_results(submitted[future], future.result()[0])
            return [future.result() for future in submitted]

        def finished(chunk):
            if on_results is None:
                return None
            return lambda output: on_results(chunk, output[0])

        pending = [
            self._pool.apply_async(evaluate_chunk, (spec, chunk), callback=finished(chunk))
            for chunk in chunks
        ]
        return [result.get() for result in pending]

    def _learn(self, seconds: float, n_items: int):
        per_item = seconds / max(n_items, 1)
        if self.seconds_per_item is None:
            self.seconds_per_item = per_item
        else:
            self.seconds_per_item = 0.7 * self.seconds_per_item + 0.3 * per_item
