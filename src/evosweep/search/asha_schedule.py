"""Asynchronous successive halving (ASHA, Li et al. 2020) as pure scheduling logic.

The resource is training samples, as in scikit-learn's HalvingRandomSearchCV: rung k fits a
candidate on ``min_resources * eta**k`` samples. A candidate is promoted to the next rung as soon
as it ranks in the top 1/eta of the results its rung has so far, so an idle engine never waits for
a round to end. The engine side drives it::

    schedule = AshaSchedule(n_candidates=64, min_resources=40, max_resources=1000, eta=3)
    while not schedule.done:
        job = schedule.next_job()     # None: every job left depends on a running one
        ... fit job.candidate on job.resources samples, then
        schedule.report(job, score)   # in any order; None or NaN for a failed fit

Deterministic: the same sequence of calls gives the same jobs (ties rank by report order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    """Fit `candidate` (an index into the caller's candidates) on `resources` samples."""

    candidate: int
    rung: int
    resources: int


def rung_resources(n_candidates: int, min_resources: int, max_resources: int, eta: int) -> list:
    """Samples per rung: min_resources * eta**k up to max_resources, and no more rungs than
    the candidates fill (1 + floor(log_eta(n_candidates)), as HalvingRandomSearchCV)."""
    if eta < 2 or int(eta) != eta:
        raise ValueError(f"eta must be an integer >= 2, got {eta!r}")
    if not 1 <= min_resources <= max_resources:
        raise ValueError(
            f"need 1 <= min_resources <= max_resources, got {min_resources}, {max_resources}"
        )
    if n_candidates < 1:
        raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
    by_candidates = 1 + int(math.floor(math.log(n_candidates, eta) + 1e-9))
    resources = []
    while min_resources * eta ** len(resources) <= max_resources:
        resources.append(int(min_resources * eta ** len(resources)))
    return resources[:by_candidates]


class AshaSchedule:
    """Which candidate to fit next on which rung; see the module docstring."""

    def __init__(self, n_candidates: int, min_resources: int, max_resources: int, eta: int = 3):
        self.n_candidates = n_candidates
        self.eta = int(eta)
        self.resources = rung_resources(n_candidates, min_resources, max_resources, eta)
        self.results: list[dict[int, float]] = [{} for _ in self.resources]  # report order
        self.promoted: list[set[int]] = [set() for _ in self.resources]
        self.running: set[Job] = set()
        self.started = 0  # candidates started on the bottom rung

    def next_job(self) -> Job | None:
        """A promotion (highest rung first), else a new candidate; None when neither exists."""
        for rung in reversed(range(len(self.resources) - 1)):
            candidate = self._promotable(rung)
            if candidate is not None:
                self.promoted[rung].add(candidate)
                return self._start(candidate, rung + 1)
        if self.started < self.n_candidates:
            self.started += 1
            return self._start(self.started - 1, 0)
        return None

    def report(self, job: Job, score: float | None) -> None:
        """The job's score (higher is better); a failed fit is never promoted."""
        self.running.remove(job)
        failed = score is None or not math.isfinite(score)
        self.results[job.rung][job.candidate] = -math.inf if failed else float(score)

    @property
    def done(self) -> bool:
        """No job runs and none is left to start."""
        if self.running or self.started < self.n_candidates:
            return False
        return all(self._promotable(rung) is None for rung in range(len(self.resources) - 1))

    def best(self) -> tuple[int, int, float] | None:
        """(candidate, rung, score) of the best result on the highest rung that has one."""
        for rung in reversed(range(len(self.resources))):
            scored = {c: s for c, s in self.results[rung].items() if s > -math.inf}
            if scored:
                candidate = max(scored, key=scored.__getitem__)  # the first reported on ties
                return candidate, rung, scored[candidate]
        return None

    def _promotable(self, rung: int) -> int | None:
        """The best not yet promoted candidate among the top 1/eta of the rung's results."""
        results = self.results[rung]
        ranked = sorted(results, key=results.__getitem__, reverse=True)  # stable: report order
        for candidate in ranked[: len(results) // self.eta]:
            if candidate not in self.promoted[rung] and results[candidate] > -math.inf:
                return candidate
        return None

    def _start(self, candidate: int, rung: int) -> Job:
        job = Job(candidate, rung, self.resources[rung])
        self.running.add(job)
        return job
