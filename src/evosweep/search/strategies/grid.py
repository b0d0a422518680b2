"""Grid: every combination of the space's values (scikit-learn's GridSearchCV)."""

from __future__ import annotations

from evosweep import space as search_space
from evosweep.search.strategy import SearchCVStrategy, search_options


class Grid(SearchCVStrategy):
    def make_search(self, model, seed):
        from sklearn.model_selection import GridSearchCV

        grid = search_space.grid(model.space, model.where("space"))
        return GridSearchCV(model.build(seed), grid, **search_options(model, seed))

    def plot(self, job, outcome):
        from evosweep.search import plots

        super().plot(job, outcome)
        plots.plot_heatmap(outcome.cv_results, job.model, job.plot_dir / "heatmap.png", job.dpi)
