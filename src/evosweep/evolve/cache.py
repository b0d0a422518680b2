"""Fitness cache keyed by genome: a genome is never evaluated twice in a run, nor again after a
kill when the run journals its evaluations."""

from __future__ import annotations

import hashlib
from itertools import islice

import numpy as np


def genome_key(genome) -> bytes:
    """Exact identity of a genome (float64 bytes), hashed to 16 bytes to keep the cache small."""
    data = np.asarray(genome, dtype=np.float64).tobytes()
    return hashlib.blake2b(data, digest_size=16).digest()


class FitnessCache:
    """genome key -> evaluation result (fitness values followed by extras).

    journal: an evosweep.journal.Journal of this run's evaluations, or None. A genome the cache
    has not seen is looked up there before it is evaluated (it still counts as an evaluation,
    as in the run that journalled it); `journal_chunk` records results as chunks finish.
    """

    def __init__(self, keep_genomes: bool = False, journal=None):
        self.results: dict[bytes, tuple[float, ...]] = {}
        # Searches report every candidate, so they keep the genomes too (in evaluation order).
        self.genomes: dict[bytes, list] | None = {} if keep_genomes else None
        self.journal = journal
        self.from_journal = 0  # evaluations answered by the journal
        self.computed = 0  # evaluations that ran

    def state(self, size: int | None = None) -> dict:
        """The cache as it was after its first `size` evaluations (default: all): entries are
        only ever appended, so that is the state at the end of an earlier generation."""
        if size is None or size >= len(self.results):
            return {"results": self.results, "genomes": self.genomes}
        genomes = None if self.genomes is None else dict(islice(self.genomes.items(), size))
        return {"results": dict(islice(self.results.items(), size)), "genomes": genomes}

    def restore(self, state: dict) -> None:
        self.results, self.genomes = state["results"], state["genomes"]

    def evaluated(self) -> list[tuple[list, tuple[float, ...]]]:
        """(genome, result) of every evaluation, in order (searches only)."""
        return [(genome, self.results[key]) for key, genome in (self.genomes or {}).items()]

    def __len__(self):
        return len(self.results)

    def journal_chunk(self, genomes: list, results: list) -> None:
        """Journal finished evaluations (a map backend's per-chunk hook)."""
        if self.journal is not None:
            self.journal.record([genome_key(g) for g in genomes], results)

    def evaluate(self, genomes: list, evaluate_batch) -> tuple[list[tuple[float, ...]], int]:
        """Results for `genomes` in order and the number of cache hits.

        Only genomes never seen before (in this batch or earlier) and not in the journal reach
        `evaluate_batch`; a duplicate inside one batch counts as a hit too.
        """
        keys = [genome_key(g) for g in genomes]
        missing: dict[bytes, int] = {}
        for index, key in enumerate(keys):
            if key not in self.results and key not in missing:
                missing[key] = index
        if missing:
            journalled = self.journal.lookup(missing) if self.journal is not None else {}
            to_run = [key for key in missing if key not in journalled]
            fresh = evaluate_batch([genomes[missing[key]] for key in to_run]) if to_run else []
            computed = dict(zip(to_run, fresh, strict=True))
            if self.journal is not None:
                unrecorded = [key for key in to_run if key not in self.journal]
                self.journal.record(unrecorded, [computed[key] for key in unrecorded])
            self.from_journal += len(journalled)
            self.computed += len(to_run)
            # In first-seen order, whatever answered: the same order as an uninterrupted run.
            for key, index in missing.items():
                self.results[key] = journalled[key] if key in journalled else computed[key]
                if self.genomes is not None:
                    self.genomes[key] = list(genomes[index])
        hits = len(genomes) - len(missing)
        return [self.results[key] for key in keys], hits
