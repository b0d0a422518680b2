"""The strategy seam: what one way of searching a model's space provides.

A strategy checks a model before any job (`check`), runs one search (`run`, given a
`SearchJob`) and returns a `SearchOutcome`; `plot` draws its figures. Strategies whose search is
a scikit-learn `BaseSearchCV` derive from `SearchCVStrategy` and only say how to make it: fitting
it on the engines with the fit journal, and its outcome, are shared. The registry that names
them is `evosweep.search.strategies`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evosweep.models import Model
from evosweep.search.outputs import SearchOutcome


@dataclass(frozen=True)
class SearchJob:
    """One search to run: the model, its seed and training data, and where it runs.

    `workers`: engines (or SCOOP workers); `checkpoint`: where the search keeps its resumable
    state (the journal beside it, {stem}.journal), None: no resume; `cluster_options` go to
    `engines.engine_cluster` (e.g. the Slurm job's tasks and cpus_per_task); `engines`: an
    `engines.StartingCluster` the job started early, or None."""

    model: Model
    seed: int
    features: Any  # DataFrame of the training split
    labels: Any  # Series, or None for clustering
    train_path: Path
    test_path: Path
    out_dir: Path
    workers: int | None = None
    checkpoint: Path | None = None
    map_mode: str = "scoop"
    dpi: int = 110
    cluster_options: dict = field(default_factory=dict)
    engines: Any = None

    def engine_cluster(self):
        """Context of the search's EngineCluster: the one started early, else one of its own;
        stopped on the way out."""
        if self.engines is not None:
            return self.engines.using()
        from evosweep.engines import engine_cluster

        return engine_cluster(self.workers, **self.cluster_options)

    @property
    def plot_dir(self) -> Path:
        return self.out_dir / "plots"


class Strategy(ABC):
    """One way to search a model's space. `uses_engines`: its job starts ipyparallel engines
    (rule `search`); otherwise SCOOP workers (rule `search_evolutionary`)."""

    uses_engines = True

    @abstractmethod
    def check(self, model: Model) -> None:
        """Raise a one-line ConfigError for what this strategy cannot search (no data, no
        fits): runs for every model before any job."""

    @abstractmethod
    def run(self, job: SearchJob) -> SearchOutcome:
        """Search, resuming from and recording into the journal beside `job.checkpoint`."""

    @abstractmethod
    def plot(self, job: SearchJob, outcome: SearchOutcome) -> None:
        """Draw this strategy's figures, after the outputs are written."""


class SearchCVStrategy(Strategy):
    """A strategy whose search is a scikit-learn `BaseSearchCV`: grid, random, halving, and
    any `BaseSearchCV` subclass (its `_run_search(evaluate_candidates)` proposes candidates;
    every fit then goes through the engines and the journal like the others')."""

    @abstractmethod
    def make_search(self, model: Model, seed: int):
        """The configured, unfitted search; a ConfigError for a model it cannot search."""

    def check(self, model: Model) -> None:
        self.make_search(model, seed=0)

    def run(self, job: SearchJob) -> SearchOutcome:
        from evosweep.search.fitting import run_search_cv

        # Made while the engines start (search.run), before any fit.
        return run_search_cv(job, self.make_search(job.model, job.seed))

    def plot(self, job: SearchJob, outcome: SearchOutcome) -> None:
        from evosweep.search import plots

        plots.plot_history(outcome, job.model, job.plot_dir / "history.png", job.dpi)
        if job.model.is_clusterer:
            from evosweep.data import read_split

            test_features = read_split(job.test_path)[0]
            plots.plot_clustering(
                outcome.best_model,
                outcome.best_params,
                outcome.cv_results,
                test_features,
                job.plot_dir,
                job.dpi,
            )


def search_options(model: Model, seed: int) -> dict:
    """The arguments every strategy's `BaseSearchCV` takes alike: the model's seeded folds and
    scorers; a failing fit stops the search."""
    scoring, refit = model.scorers()
    return {"cv": model.folds(seed), "scoring": scoring, "refit": refit, "error_score": "raise"}
