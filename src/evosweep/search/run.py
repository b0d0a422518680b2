"""Run one model's search, whatever its strategy, and write its outputs."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from evosweep.errors import ConfigError
from evosweep.journal import remove_resume_point
from evosweep.models import Model
from evosweep.runtime.signals import signal_name, stop_on_signals
from evosweep.search.outputs import write_outputs
from evosweep.search.resume import where_kept
from evosweep.search.strategies import strategy_for
from evosweep.search.strategy import SearchJob

log = logging.getLogger(__name__)


def check_model(name: str, entry: dict, profile=None) -> Model:
    """Parse a `search.models` entry and check everything that can be checked without fits:
    the model (against its dataset's `data.Profile` when given), then what its strategy
    needs; return the model."""
    model = Model.from_config(name, entry)
    model.check(profile)
    strategy_for(model).check(model)
    return model


def check_config(config: dict, profiles: dict | None = None) -> None:
    """Every search model, before any job; `profiles`: data.preflight's, by dataset."""
    for name, entry in config["search"]["models"].items():
        check_model(name, entry, (profiles or {}).get(entry["dataset"]))


def read_training_data(model: Model, train_path):
    from evosweep.data import read_split

    features, labels = read_split(train_path)
    if model.is_clusterer:
        return features, None  # unsupervised: the labels of blobs only serve the test ARI
    if labels is None:
        raise ConfigError(
            model.where("dataset"),
            f"{model.estimator} needs labels, but dataset {model.dataset!r} has none "
            f"(use scoring: silhouette for clustering)",
        )
    return features, labels


def run(
    model: Model,
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
    SIGTERM or SIGUSR1 (a time limit, a cancel) stop the search with runtime.signals.Interrupted
    (exit status 128 + signal) once its workers are stopped; a rerun resumes."""
    strategy = strategy_for(model)
    with _engines_started_early(strategy, model, workers, cluster_options) as engines:
        features, labels = read_training_data(model, train_path)
        job = SearchJob(
            model=model,
            seed=seed,
            features=features,
            labels=labels,
            train_path=Path(train_path),
            test_path=Path(test_path),
            out_dir=Path(out_dir),
            workers=workers,
            checkpoint=Path(checkpoint) if checkpoint else None,
            map_mode=map_mode,
            dpi=dpi,
            cluster_options=cluster_options,
            engines=engines,
        )
        outcome = _search(strategy, job)
        # The engines stop in the background meanwhile.
        summary = write_outputs(model, outcome, test_path, out_dir)
        if checkpoint is not None:
            remove_resume_point(checkpoint)
        strategy.plot(job, outcome)
        _plot_test_set(job, outcome)
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


def _engines_started_early(strategy, model: Model, workers, cluster_options):
    """A strategy on engines gets them started now, in the background, while this job reads
    its data and builds its search; they import scikit-learn's model selection and the
    estimator's module as soon as they are up. Stopped at the latest on the way out."""
    if not strategy.uses_engines:
        return contextlib.nullcontext()
    from evosweep.engines import starting_engine_cluster

    modules = ("sklearn.model_selection", model.estimator.rpartition(".")[0])
    return starting_engine_cluster(workers, preload=modules, **cluster_options)


def _plot_test_set(job: SearchJob, outcome) -> None:
    """Every strategy's held-out test figure of its task (predicted vs actual, confusion
    matrix) in the job's plots directory."""
    from evosweep.data import read_split
    from evosweep.search.diagnostics import plot_test_set

    features, labels = read_split(job.test_path)
    plot_test_set(job.model.task, outcome.best_model, features, labels, job.plot_dir, job.dpi)


def _search(strategy, job: SearchJob):
    """The strategy's run; a stop by signal says where the finished work is kept."""
    with stop_on_signals():
        try:
            return strategy.run(job)
        except SystemExit as stop:  # runtime's Interrupted, or engine_cluster's SIGTERM exit
            log.warning(
                "search %s stopped by %s; finished work is kept in %s; rerun to resume",
                job.model.name,
                signal_name(stop.code),
                where_kept(job.checkpoint),
            )
            raise
