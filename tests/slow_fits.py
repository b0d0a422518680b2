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
