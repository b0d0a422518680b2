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

    def __init__(self):
        self.results: dict[bytes, tuple[float, ...]] = {}

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
        hits = len(genomes) - len(missing)
        return [self.results[key] for key in keys], hits
