"""Random: `n_iter` candidates drawn from the space (scikit-learn's RandomizedSearchCV)."""

from __future__ import annotations

from evosweep import space as search_space
from evosweep.search.strategy import SearchCVStrategy, search_options


class Random(SearchCVStrategy):
    def make_search(self, model, seed):
        from sklearn.model_selection import RandomizedSearchCV

        return RandomizedSearchCV(
            model.build(seed),
            search_space.distributions(model.space, model.where("space")),
            n_iter=model.n_iter,
            random_state=seed,
            **search_options(model, seed),
        )
