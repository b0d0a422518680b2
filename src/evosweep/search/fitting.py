"""Fitting a scikit-learn search on the engines with the fit journal, and its outcome: what
every `BaseSearchCV` strategy shares."""

from __future__ import annotations

import logging
import time

from evosweep.search.outputs import SearchOutcome, cv_results_frame
from evosweep.search.progress import FitProgress
from evosweep.search.resume import fit_journal_for, log_resumed

log = logging.getLogger(__name__)


def fit_search(search, features, labels, engines, journal=None) -> FitProgress:
    """Fit a scikit-learn search on `engines`, logging fits done / total as batches finish;
    `journal` (a journal.FitJournal) answers the fits it holds and records the others."""
    progress = FitProgress()
    search.n_jobs = engines.parallel_jobs
    with engines.joblib_backend(observer=progress, journal=journal):
        search.fit(features, labels)
    return progress


def run_search_cv(job, search) -> SearchOutcome:
    """Fit `search` (a BaseSearchCV) on a private ipyparallel cluster of `job.workers`
    engines, resuming from and recording into the job's journal."""
    with fit_journal_for(job) as journal:
        started = time.perf_counter()
        with job.engine_cluster() as engines:
            waited = time.perf_counter() - started
            try:
                progress = fit_search(search, job.features, job.labels, engines, journal)
            finally:
                log_resumed(journal)
            n_engines = engines.n_engines
        wall = time.perf_counter() - started
    log.info(
        "%s; %d fits in %.1f s on %d engine(s), %.1f s of it waiting for their start",
        progress.status(),
        progress.total,
        wall,
        n_engines,
        waited,
    )
    return search_cv_outcome(search, job.model.refit_metric, progress.total, wall, n_engines)


def search_cv_outcome(search, refit_metric: str, n_fits: int, wall: float, workers: int):
    """The SearchOutcome of a fitted BaseSearchCV."""
    results, best = search.cv_results_, search.best_index_
    return SearchOutcome(
        cv_results=cv_results_frame(results),
        best_params=search.best_params_,
        best_model=search.best_estimator_,
        best_score=results[f"mean_test_{refit_metric}"][best],
        best_score_std=results[f"std_test_{refit_metric}"][best],
        n_candidates=distinct_candidates(search),
        n_fits=n_fits,
        wall_seconds=wall,
        workers=workers,
    )


def distinct_candidates(search) -> int:
    """Candidates searched, each once: a halving search lists a candidate once per round."""
    if hasattr(search, "n_candidates_"):
        return int(search.n_candidates_[0])
    return len(search.cv_results_["params"])
