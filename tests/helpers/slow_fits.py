"""An estimator whose fits take a fixed time, so a search is long enough to be killed halfway on
any host (imported by engines and SCOOP workers: tests put tests/ on their PYTHONPATH)."""

from __future__ import annotations

import os
import time

from sklearn.svm import SVC

# Seconds every fit waits before fitting; the environment sets it for a whole run.
SECONDS_VARIABLE = "EVOSWEEP_TEST_FIT_SECONDS"


class SlowSVC(SVC):
    """sklearn's SVC (same parameters, same results), each fit at least SECONDS_VARIABLE s."""

    def fit(self, X, y, sample_weight=None):
        time.sleep(float(os.environ.get(SECONDS_VARIABLE, "0.1")))
        return super().fit(X, y, sample_weight=sample_weight)


# The first line each slow model's rule logs once its engines or SCOOP workers all run.
STARTED = {"slow_grid": "engine(s) ready", "slow_evolution": "SCOOP workers ready"}


def slow_models(grid_points: int) -> dict:
    """Search models of SlowSVC on iris whose work outlasts a test that kills it halfway: a grid
    of `grid_points` x 3 folds, and an evolution of 24 fits per generation for 30 generations."""
    return {
        "slow_grid": {
            "dataset": "iris",
            "estimator": "helpers.slow_fits.SlowSVC",
            "space": {"C": {"logspace": [-1, 1, grid_points]}},
            "cv": 3,
        },
        "slow_evolution": {
            "dataset": "iris",
            "estimator": "helpers.slow_fits.SlowSVC",
            "strategy": "evolutionary",
            "space": {"C": {"logspace": [-1, 1, 10]}, "gamma": {"logspace": [-3, 0, 10]}},
            "cv": 3,
            "evolution": {"population": 8, "generations": 30},
        },
    }
