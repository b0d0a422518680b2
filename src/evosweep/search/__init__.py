"""Search stage: one model's hyper-parameter search, whatever its strategy.

Modules: `strategies` (scikit-learn's grid, random and halving search objects), `evolutionary`
(a GA over the space, run by the evolution stage), `run` (one search on its engines, then its
outputs), `progress` (fits done / total from the joblib backend), `outputs` (the files every
strategy writes, and the leaderboard), `plots`.
"""

from evosweep.models import check_model, check_models
from evosweep.search.outputs import SUMMARY_KEYS, TIMING_COLUMNS, leaderboard
from evosweep.search.run import fit_search, run
from evosweep.search.strategies import make_search

__all__ = [
    "SUMMARY_KEYS",
    "TIMING_COLUMNS",
    "check_model",
    "check_models",
    "fit_search",
    "leaderboard",
    "make_search",
    "run",
]
