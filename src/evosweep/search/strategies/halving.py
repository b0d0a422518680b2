"""Halving: `n_iter` random candidates, the best third kept on thrice the samples each round
(scikit-learn's HalvingRandomSearchCV)."""

from __future__ import annotations

from evosweep import space as search_space
from evosweep.errors import ConfigError
from evosweep.search.strategy import SearchCVStrategy, search_options


class Halving(SearchCVStrategy):
    def make_search(self, model, seed):
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401
        from sklearn.model_selection import HalvingRandomSearchCV

        if model.is_clusterer:
            raise ConfigError(
                model.where("strategy"),
                "halving supports one metric; silhouette models use grid or random",
            )
        return HalvingRandomSearchCV(
            model.build(seed),
            search_space.distributions(model.space, model.where("space")),
            n_candidates=model.n_iter,
            random_state=seed,
            **search_options(model, seed),
        )
