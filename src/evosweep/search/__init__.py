"""Search stage: one model's hyper-parameter search, whatever its strategy.

Modules: `strategy` (the seam: SearchJob, Strategy, SearchCVStrategy), `strategies` (the
registry and one module per strategy), `fitting` (a scikit-learn search on the engines with the
fit journal), `resume` (the journal beside the checkpoint), `run` (checks; one search, then its
outputs), `progress` (fits done / total), `outputs` (the files every strategy writes, and the
leaderboard), `plots`.
"""

from evosweep.search.fitting import fit_search
from evosweep.search.outputs import SUMMARY_KEYS, TIMING_COLUMNS, leaderboard
from evosweep.search.run import check_config, check_model, run
from evosweep.search.strategies import make_search

__all__ = [
    "SUMMARY_KEYS",
    "TIMING_COLUMNS",
    "check_config",
    "check_model",
    "fit_search",
    "leaderboard",
    "make_search",
    "run",
]
