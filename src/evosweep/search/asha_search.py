"""Asynchronous successive halving on the engines: the `asha` strategy's search.

`n_iter` random candidates (drawn as HalvingRandomSearchCV draws them) are fitted on growing
subsamples of the folds (resource = training samples, subsampled as HalvingRandomSearchCV
subsamples them); search.asha_schedule decides which candidate runs next on which rung. Each fold
fit is one task on the engines, submitted through the joblib backend of the engines, so the fit
journal answers the fits it holds and records the others, as for every other search.

A rung's promotions depend on the order its results arrive in, which on several engines depends
on their timing. The journal therefore also records that order (ORDER_KEY entries), and a resumed
run takes the journalled results in it: it reaches the interrupted run's state exactly, and goes
on from there. On one engine (tasks run in order) a run is reproducible, and so is a resume.
"""

from __future__ import annotations

import collections
import logging
import queue
import time
from dataclasses import dataclass, field

import numpy as np

from evosweep.search.asha_schedule import AshaSchedule, Job

log = logging.getLogger(__name__)

ORDER_KEY = b"asha-order-%d"  # the journal key of the n-th fit result the schedule took


@dataclass
class Fit:
    """One fold fit of a job, and once back, `result` (_fit_and_score's dict)."""

    job: Job
    fold: int
    handle: object = None  # what the backend's submit returned
    result: dict | None = None

    @property
    def identity(self) -> tuple:
        return (self.job.candidate, self.job.rung, self.fold)


@dataclass
class AshaResult:
    """Every finished job, in the order the schedule took them, and the best."""

    rows: list = field(default_factory=list)  # (job, fold results, seconds from the start)
    best: tuple | None = None  # AshaSchedule.best()
    n_fits: int = 0


class AshaSearch:
    """Fit `candidates` (params dicts) of `estimator` with asynchronous successive halving.

    `folds`: the (train, test) index pairs of the whole training data; `scorer`: a scikit-learn
    scorer; `min_resources`, `eta`: as HalvingRandomSearchCV's; `seed`: the subsampling's."""

    def __init__(self, estimator, candidates, folds, scorer, *, min_resources, eta, seed):
        self.estimator = estimator
        self.candidates = list(candidates)
        self.folds = list(folds)
        self.scorer = scorer
        self.min_resources = int(min_resources)
        self.eta = int(eta)
        self.seed = seed

    def subsampled_folds(self, resources: int, n_samples: int) -> list:
        """The folds of a rung, as HalvingRandomSearchCV's subsampling splitter makes them."""
        from sklearn.utils import resample

        fraction = resources / n_samples
        folds = []
        for train, test in self.folds:
            size = [int(fraction * len(part)) for part in (train, test)]
            folds.append(
                tuple(
                    resample(part, replace=False, random_state=self.seed, n_samples=n)
                    for part, n in zip((train, test), size, strict=True)
                )
            )
        return folds

    def run(self, features, labels, slots: int, journal=None) -> AshaResult:
        """Keep `slots` fits in flight on the active joblib backend (the engines) until the
        schedule is done; `journal` (a journal.FitJournal) orders the results a resume takes."""
        from joblib.parallel import get_active_backend

        n_samples = len(features)
        schedule = AshaSchedule(len(self.candidates), self.min_resources, n_samples, self.eta)
        rung_folds = [self.subsampled_folds(r, n_samples) for r in schedule.resources]
        backend = get_active_backend()[0]
        run = _Run(self, backend, features, labels, rung_folds, journal)
        result = AshaResult()
        started = time.perf_counter()
        while not schedule.done:
            run.fill(schedule, slots)
            fit = run.next_finished()
            job_results = run.collect(fit)
            if job_results is not None:
                scores = [r["test_scores"] for r in job_results]
                schedule.report(fit.job, float(np.mean(scores)))
                result.rows.append((fit.job, job_results, time.perf_counter() - started))
                run.log_progress(schedule, result)
        result.best, result.n_fits = schedule.best(), run.taken
        return result


class _Run:
    """The fits of one AshaSearch.run: submitting, taking them back in order, their jobs."""

    def __init__(self, search: AshaSearch, backend, features, labels, rung_folds, journal):
        self.search = search
        self.backend = backend
        self.features, self.labels = features, labels
        self.rung_folds = rung_folds
        self.journal = journal
        self.ready: collections.deque[Fit] = collections.deque()  # of started jobs, not sent
        self.in_flight = 0
        self.finished: queue.Queue[Fit] = queue.Queue()  # filled by the backend's callbacks
        self.arrived: dict[tuple, Fit] = {}  # back, not yet taken, in arrival order
        self.parts: dict[Job, dict[int, dict]] = collections.defaultdict(dict)
        self.taken = 0
        self.replay = collections.deque(self._journalled_order())
        self.last_logged = 0.0

    def _journalled_order(self) -> list:
        if self.journal is None:
            return []
        count = 0
        while ORDER_KEY % count in self.journal:
            count += 1
        found = self.journal.lookup([ORDER_KEY % n for n in range(count)])
        if count:
            log.info("asha: replaying the order of %d journalled fit results", count)
        return [found[ORDER_KEY % n] for n in range(count)]

    def fill(self, schedule: AshaSchedule, slots: int) -> None:
        """Send fits until `slots` are in flight or nothing can start yet."""
        while self.in_flight < slots:
            if not self.ready:
                job = schedule.next_job()
                if job is None:
                    break
                self.ready.extend(Fit(job, fold) for fold in range(len(self.search.folds)))
            self._send(self.ready.popleft())
        if self.in_flight == 0:
            raise RuntimeError("asha: no fit in flight and none to start before the end")

    def _send(self, fit: Fit) -> None:
        from sklearn.base import clone

        from evosweep.journal.sklearn_joblib import fit_batch

        train, test = self.rung_folds[fit.job.rung][fit.fold]
        params = self.search.candidates[fit.job.candidate]
        n_folds = len(self.search.folds)
        batch = fit_batch(
            self.backend,
            clone(self.search.estimator),
            self.features,
            self.labels,
            scorer=self.search.scorer,
            train=train,
            test=test,
            verbose=0,
            parameters=params,
            fit_params=None,
            score_params=None,
            return_n_test_samples=True,
            return_times=True,
            split_progress=(fit.fold, n_folds),
            candidate_progress=(fit.job.candidate, len(self.search.candidates)),
            error_score="raise",
        )
        fit.handle = self.backend.submit(batch, callback=lambda _future: self.finished.put(fit))
        self.in_flight += 1

    def next_finished(self) -> Fit:
        """The next fit result the schedule takes: a resume's journalled order first, then
        the order they arrive in."""
        wanted = self.replay[0] if self.replay else None
        while (wanted is None and not self.arrived) or (
            wanted is not None and wanted not in self.arrived
        ):
            if wanted is not None and self.in_flight == 0:  # not sent: other engines or slots
                log.warning("asha: the journalled order does not match this run; not replayed")
                self.replay.clear()
                return self.next_finished()
            fit = self.finished.get()  # blocks until the backend says a fit is back
            fit.result = self.backend.retrieve_result(fit.handle)[0]  # raises a failed fit's error
            self.in_flight -= 1
            self.arrived[fit.identity] = fit
        key = wanted if wanted is not None else next(iter(self.arrived))
        fit = self.arrived.pop(key)
        if wanted is not None:
            self.replay.popleft()
        elif self.journal is not None:
            self.journal.record([ORDER_KEY % self.taken], [fit.identity])
        self.taken += 1
        return fit

    def collect(self, fit: Fit) -> list | None:
        """The job's fold results once all are back, else None."""
        parts = self.parts[fit.job]
        parts[fit.fold] = fit.result
        if len(parts) < len(self.search.folds):
            return None
        del self.parts[fit.job]
        return [parts[fold] for fold in range(len(self.search.folds))]

    def log_progress(self, schedule: AshaSchedule, result: AshaResult) -> None:
        now = time.perf_counter()
        if now - self.last_logged < 2.0 and not schedule.done:
            return
        self.last_logged = now
        counts = collections.Counter(job.rung for job, _, _ in result.rows)
        rungs = ", ".join(f"{counts[r]} on {n}" for r, n in enumerate(schedule.resources))
        best = schedule.best()
        log.info(
            "asha progress: %d fits, candidates finished per rung (samples): %s; best %s",
            self.taken,
            rungs,
            "none yet" if best is None else f"{best[2]:.4f} on rung {best[1]}",
        )
