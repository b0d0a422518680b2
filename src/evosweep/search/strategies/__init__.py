"""The search strategies, by the name `search.models.NAME.strategy` gives them.

Adding a strategy: one module here defining a `strategy.Strategy` (a `SearchCVStrategy` when its
search is a scikit-learn `BaseSearchCV`), and one line in STRATEGIES.
"""

from __future__ import annotations

from evosweep.errors import ConfigError
from evosweep.search.strategies import evolutionary, grid, halving, randomized
from evosweep.search.strategy import SearchCVStrategy, Strategy

STRATEGIES: dict[str, Strategy] = {
    "grid": grid.Grid(),
    "random": randomized.Random(),
    "halving": halving.Halving(),
    "evolutionary": evolutionary.Evolutionary(),
}


def strategy_named(name: str, where: str = "strategy") -> Strategy:
    """The strategy called `name`; an unknown name is a ConfigError at `where`."""
    try:
        return STRATEGIES[name]
    except KeyError:
        options = ", ".join(map(repr, STRATEGIES))
        raise ConfigError(where, f"{name!r} is not one of {options}") from None


def strategy_for(model) -> Strategy:
    """The strategy of a models.Model."""
    return strategy_named(model.strategy, model.where("strategy"))


def engine_strategies() -> list[str]:
    """The names of the strategies whose searches run on ipyparallel engines."""
    return [name for name, strategy in STRATEGIES.items() if strategy.uses_engines]


def search_cv_strategies() -> list[str]:
    """The names of the strategies whose search is a scikit-learn BaseSearchCV."""
    return [name for name, strategy in STRATEGIES.items() if isinstance(strategy, SearchCVStrategy)]


def make_search(model, seed: int):
    """The unfitted scikit-learn search of a model whose strategy has one (what the scaling
    study times and the benchmarks fit)."""
    strategy = strategy_for(model)
    if not isinstance(strategy, SearchCVStrategy):
        raise ConfigError(model.where("strategy"), f"{model.strategy!r} has no scikit-learn search")
    return strategy.make_search(model, seed)
