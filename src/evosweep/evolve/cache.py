"""Fitness cache keyed by genome: a genome is never evaluated twice in a run."""

from __future__ import annotations

import hashlib

import numpy as np


def genome_key(genome) -> bytes:
    """Exact identity of a genome (float64 bytes), hashed to 16 bytes to keep the cache small."""
    data = np.asarray(genome, dtype=np.float64).tobytes()
    return hashlib.blake2b(data, digest_size=16).digest()


class FitnessCache:
    """genome key -> evaluation result (fitness values followed by extras)."""

    def __init__(self, keep_genomes: bool = False):
        self.results: dict[bytes, tuple[float, ...]] = {}
        # Searches report every candidate, so they keep the genomes too (in evaluation order).
        self.genomes: dict[bytes, list] | None = {} if keep_genomes else None

    def state(self) -> dict:
        return {"results": self.results, "genomes": self.genomes}

    def restore(self, state: dict) -> None:
        self.results, self.genomes = state["results"], state["genomes"]

    def evaluated(self) -> list[tuple[list, tuple[float, ...]]]:
        """(genome, result) of every evaluation, in order (searches only)."""
        return [(genome, self.results[key]) for key, genome in (self.genomes or {}).items()]

    def __len__(self):
        return len(self.results)

    def evaluate(self, genomes: list, evaluate_batch) -> tuple[list[tuple[float, ...]], int]:
        """Results for `genomes` in order and the number of cache hits.

        Only genomes never seen before (in this batch or earlier) reach `evaluate_batch`; a
        duplicate inside one batch counts as a hit too.
        """
        keys = [genome_key(g) for g in genomes]
        missing: dict[bytes, int] = {}
        for index, key in enumerate(keys):
            if key not in self.results and key not in missing:
                missing[key] = index
        if missing:
            fresh = evaluate_batch([genomes[i] for i in missing.values()])
            self.results.update(zip(missing, fresh, strict=True))
            if self.genomes is not None:
                self.genomes.update((key, list(genomes[i])) for key, i in missing.items())
        hits = len(genomes) - len(missing)
        return [self.results[key] for key in keys], hits
