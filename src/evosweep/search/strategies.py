"""scikit-learn's search objects for the grid, random and halving strategies.

The evolutionary strategy has no scikit-learn object: it is in `evolutionary`.
"""

from __future__ import annotations

from evosweep import models
from evosweep import space as search_space
from evosweep.errors import ConfigError


def make_search(name: str, spec: dict, seed: int, n_jobs: int | None = None):
    """The configured scikit-learn search object (not fitted)."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import GridSearchCV, HalvingRandomSearchCV, RandomizedSearchCV

    estimator = models.build_estimator(name, spec, seed)
    where = f"search.models.{name}"
    space = search_space.for_strategy(spec["strategy"], spec["space"], f"{where}.space")
    scoring, refit = models.scoring_for(spec)
    common = dict(
        cv=models.cv_folds(spec, seed), n_jobs=n_jobs, error_score="raise", scoring=scoring
    )
    strategy = spec["strategy"]
    if strategy == "grid":
        return GridSearchCV(estimator, space, refit=refit, **common)
    if strategy == "random":
        return RandomizedSearchCV(
            estimator, space, n_iter=spec["n_iter"], refit=refit, random_state=seed, **common
        )
    if strategy == "halving":
        if isinstance(scoring, dict):
            raise ConfigError(
                f"{where}.strategy",
                "halving supports one metric; silhouette models use grid or random",
            )
        return HalvingRandomSearchCV(
            estimator, space, n_candidates=spec["n_iter"], random_state=seed, **common
        )
    raise ConfigError(f"{where}.strategy", f"{strategy!r} has no scikit-learn search object")
