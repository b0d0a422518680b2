"""ASHA: `n_iter` random candidates, asynchronous successive halving on the engines (a candidate
moves to `eta` times the training samples as soon as it ranks in the top 1/eta of its rung, so no
engine waits for a round); search.asha_search runs it."""

from __future__ import annotations

import logging
import time

from evosweep import space as search_space
from evosweep.errors import ConfigError
from evosweep.search.outputs import SearchOutcome
from evosweep.search.strategy import Strategy

log = logging.getLogger(__name__)


class Asha(Strategy):
    def check(self, model) -> None:
        if model.is_clusterer:
            raise ConfigError(
                model.where("strategy"),
                "asha supports one metric; silhouette models use grid or random",
            )
        search_space.distributions(model.space, model.where("space"))
        model.build(0)

    def run(self, job) -> SearchOutcome:
        from evosweep.search.resume import fit_journal_for, log_resumed

        self.check(job.model)
        search = make_search(job.model, job.seed, job.features, job.labels)
        with fit_journal_for(job) as journal:
            started = time.perf_counter()
            with job.engine_cluster() as engines:
                with engines.joblib_backend(journal=journal):
                    result = search.run(job.features, job.labels, engines.parallel_jobs, journal)
                n_engines = engines.n_engines
            wall = time.perf_counter() - started
            log_resumed(journal)
        log.info("asha: %d fits in %.1f s on %d engine(s)", result.n_fits, wall, n_engines)
        return outcome(job, search, result, wall, n_engines)

    def plot(self, job, outcome: SearchOutcome) -> None:
        from evosweep.search import plots

        plots.plot_history(outcome, job.model, job.plot_dir / "history.png", job.dpi)


def min_resources(model, labels) -> int:
    """The model's `min_resources`; "smallest" as HalvingRandomSearchCV's: 2 samples per fold
    (and per class for a classifier)."""
    import numpy as np

    if model.min_resources != "smallest":
        return int(model.min_resources)
    return 2 * model.cv * (len(np.unique(labels)) if labels is not None else 1)


def make_search(model, seed: int, features, labels):
    """The model's AshaSearch: HalvingRandomSearchCV's candidates for the seed, its folds."""
    from sklearn.metrics import check_scoring
    from sklearn.model_selection import ParameterSampler

    from evosweep.search.asha_search import AshaSearch

    estimator = model.build(seed)
    space = search_space.distributions(model.space, model.where("space"))
    first_rung = min_resources(model, labels)
    if first_rung > len(features):
        raise ConfigError(
            model.where("min_resources"),
            f"{first_rung} samples is more than the {len(features)} training samples of "
            f"{model.dataset!r}; give at most {len(features)}",
        )
    return AshaSearch(
        estimator,
        ParameterSampler(space, model.n_iter, random_state=seed),
        model.folds(seed).split(features, labels),
        check_scoring(estimator, scoring=model.scoring),
        min_resources=first_rung,
        eta=model.eta,
        seed=seed,
    )


def outcome(job, search, result, wall: float, workers: int) -> SearchOutcome:
    """cv_results as HalvingRandomSearchCV's (a row per candidate and rung: `iter`,
    `n_resources`), the best of the highest rung refitted on all the training data."""
    import numpy as np
    import pandas as pd
    from sklearn.base import clone

    rows = []
    for job_done, fits, seconds in result.rows:
        scores = [fit["test_scores"] for fit in fits]
        rows.append(
            {
                "iter": job_done.rung,
                "n_resources": job_done.resources,
                "candidate": job_done.candidate,
                "elapsed_seconds": seconds,
                **{f"param_{k}": v for k, v in search.candidates[job_done.candidate].items()},
                "mean_fit_time": np.mean([fit["fit_time"] for fit in fits]),
                "std_fit_time": np.std([fit["fit_time"] for fit in fits]),
                "mean_score_time": np.mean([fit["score_time"] for fit in fits]),
                "std_score_time": np.std([fit["score_time"] for fit in fits]),
                "mean_test_score": np.mean(scores),
                "std_test_score": np.std(scores),
            }
        )
    frame = pd.DataFrame(rows)
    history = frame.pop("elapsed_seconds")
    frame["rank_test_score"] = frame["mean_test_score"].rank(method="min", ascending=False)
    frame["rank_test_score"] = frame["rank_test_score"].astype(int)
    order = frame.sort_values(["iter", "candidate"], kind="stable").index
    candidate, rung, _ = result.best
    best_row = frame[(frame["candidate"] == candidate) & (frame["iter"] == rung)].iloc[0]
    best_params = search.candidates[candidate]
    best_model = clone(search.estimator).set_params(**best_params).fit(job.features, job.labels)
    return SearchOutcome(
        cv_results=frame.loc[order].reset_index(drop=True),
        best_params=best_params,
        best_model=best_model,
        best_score=float(best_row["mean_test_score"]),
        best_score_std=float(best_row["std_test_score"]),
        n_candidates=len(search.candidates),
        n_fits=result.n_fits,
        wall_seconds=wall,
        workers=workers,
        history=history.loc[order].reset_index(drop=True),
    )
