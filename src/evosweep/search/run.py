"""Run one model's search, whatever its strategy, and write its outputs."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from evosweep import models
from evosweep.errors import ConfigError
from evosweep.search.outputs import SearchOutcome, cv_results_frame, write_outputs
from evosweep.search.progress import FitProgress

log = logging.getLogger(__name__)


def fit_search(search, features, labels, engines, journal=None) -> FitProgress:
    """Fit a scikit-learn search on `engines`, logging fits done / total as batches finish;
    `journal` (a journal.FitJournal) answers the fits it holds and records the others."""
    progress = FitProgress()
    search.n_jobs = engines.parallel_jobs
    with engines.joblib_backend(observer=progress, journal=journal):
        search.fit(features, labels)
    return progress


def journal_identity(name: str, spec: dict, seed: int, features, labels) -> dict:
    """Everything that changes the fits of this search: its model spec, seed and data."""
    from joblib import hash as joblib_hash

    return {"search": name, "spec": spec, "seed": seed, "data": joblib_hash((features, labels))}


def read_training_data(name: str, spec: dict, train_path):
    from evosweep.data import read_split

    features, labels = read_split(train_path)
    if models.is_clusterer(spec):
        return features, None  # unsupervised: the labels of blobs only serve the test ARI
    if labels is None:
        raise ConfigError(
            f"search.models.{name}.dataset",
            f"{spec['estimator']} needs labels, but dataset {spec['dataset']!r} has none "
            f"(use scoring: silhouette for clustering)",
        )
    return features, labels


def run_sklearn(
    name, spec, seed, features, labels, workers, journal=None, **cluster_options
) -> SearchOutcome:
    """Grid, random or halving on a private ipyparallel cluster of `workers` engines;
    `journal`: a journal.FitJournal to resume from and record into."""
    from evosweep.engines import engine_cluster
    from evosweep.search.strategies import make_search

    search = make_search(name, spec, seed)  # config errors surface before any engine starts
    started = time.perf_counter()
    with engine_cluster(workers, **cluster_options) as engines:
        try:
            progress = fit_search(search, features, labels, engines, journal)
        finally:
            if journal is not None:
                log.info(
                    "resumed %d of %d fits from the journal; %d sent to the engines",
                    journal.reused,
                    journal.reused + journal.sent,
                    journal.sent,
                )
        n_engines = engines.n_engines
    wall = time.perf_counter() - started
    log.info(
        "%s; %d fits in %.1f s on %d engine(s)", progress.status(), progress.total, wall, n_engines
    )
    refit_metric = "silhouette" if models.is_clusterer(spec) else "score"
    results, best = search.cv_results_, search.best_index_
    return SearchOutcome(
        cv_results=cv_results_frame(results),
        best_params=search.best_params_,
        best_model=search.best_estimator_,
        best_score=results[f"mean_test_{refit_metric}"][best],
        best_score_std=results[f"std_test_{refit_metric}"][best],
        n_candidates=len(results["params"]),
        n_fits=progress.total,
        wall_seconds=wall,
        workers=n_engines,
    )


def run(
    name: str,
    spec: dict,
    seed: int,
    train_path,
    test_path,
    out_dir,
    workers: int | None = None,
    *,
    checkpoint=None,
    map_mode: str = "scoop",
    dpi: int = 110,
    **cluster_options,
) -> dict:
    """One model's search; writes every output into `out_dir` and returns the summary.

    workers: engines (or SCOOP workers for the evolutionary strategy); cluster_options go to
    engine_cluster (e.g. the Slurm job's tasks and cpus_per_task). `checkpoint`: where the
    search keeps its resumable state: the evolutionary strategy's checkpoint, and beside it
    the journal of finished fits or evaluations ({stem}.journal); None: no resume.
    SIGTERM or SIGUSR1 (a time limit, a cancel) stop the search with journal.Interrupted
    (exit status 128 + signal) once its workers are stopped; a rerun resumes."""
    from evosweep import journal as fit_journal

    features, labels = read_training_data(name, spec, train_path)
    with fit_journal.stop_on_signals():
        try:
            if spec["strategy"] == "evolutionary":
                outcome = _evolutionary(
                    name,
                    spec,
                    seed,
                    features,
                    labels,
                    train_path,
                    workers,
                    checkpoint,
                    out_dir,
                    map_mode,
                )
            else:
                outcome = _sklearn_with_journal(
                    name, spec, seed, features, labels, workers, checkpoint, cluster_options
                )
        except SystemExit as stop:  # journal.Interrupted, or engine_cluster's SIGTERM exit
            where = fit_journal.path_for(checkpoint) if checkpoint else "nowhere (no checkpoint)"
            log.warning(
                "search %s stopped by %s; finished work is kept in %s; rerun to resume",
                name,
                fit_journal.signal_name(stop.code),
                where,
            )
            raise
    summary = write_outputs(name, spec, outcome, test_path, out_dir)
    if checkpoint is not None:
        from evosweep.evolve.stage import remove_checkpoint

        remove_checkpoint(checkpoint)  # and its journal
    if spec["strategy"] != "evolutionary":
        _plot(outcome, spec, test_path, Path(out_dir) / "plots", dpi)
    log.info(
        "best %s = %.4f +- %.4f with %s from %d candidates (%d fits); test %.4f",
        summary["scoring"],
        summary["best_score"],
        summary["best_score_std"],
        summary["best_params"],
        summary["n_candidates"],
        summary["n_fits"],
        summary["test_score"],
    )
    return summary


def _evolutionary(
    name, spec, seed, features, labels, train_path, workers, checkpoint, out_dir, map_mode
) -> SearchOutcome:
    from evosweep.search.evolutionary import run_evolutionary

    with tempfile.TemporaryDirectory() as scratch:
        # The SCOOP run keeps its files beside the checkpoint: without one, they go to a
        # directory of their own (and no resume).
        state = checkpoint or Path(scratch) / f"{name}.pkl"
        outcome = run_evolutionary(name, spec, seed, train_path, workers, state, out_dir, map_mode)
    outcome.best_model.fit(features, labels)
    return outcome


def _sklearn_with_journal(
    name, spec, seed, features, labels, workers, checkpoint, cluster_options
) -> SearchOutcome:
    """run_sklearn, resuming from and recording into the journal beside `checkpoint`."""
    from evosweep import journal as fit_journal

    if checkpoint is None:
        return run_sklearn(name, spec, seed, features, labels, workers, **cluster_options)
    identity = journal_identity(name, spec, seed, features, labels)
    journal = fit_journal.FitJournal(fit_journal.path_for(checkpoint), identity)
    try:
        return run_sklearn(name, spec, seed, features, labels, workers, journal, **cluster_options)
    finally:
        journal.close()


def _plot(outcome: SearchOutcome, spec: dict, test_path, plot_dir: Path, dpi: int) -> None:
    from evosweep.search import plots

    plot_dir.mkdir(parents=True, exist_ok=True)
    refit_metric = "silhouette" if models.is_clusterer(spec) else "score"
    plots.plot_heatmap(outcome.cv_results, spec, refit_metric, plot_dir / "heatmap.png", dpi)
    if models.is_clusterer(spec):
        from evosweep.data import read_split

        test_features = read_split(test_path)[0]
        plots.plot_clustering(
            outcome.best_model,
            outcome.best_params,
            outcome.cv_results,
            test_features,
            plot_dir,
            dpi,
        )
