"""A classifier whose fits sleep in proportion to `cost` x training samples, so 8 engines fit
side by side on a 2-core host (bench/asha.py; imported by the engines)."""

from __future__ import annotations

import time

from sklearn.linear_model import LogisticRegression

SECONDS_PER_100_SAMPLES = 1.0


class SleepyClassifier(LogisticRegression):
    """LogisticRegression (same scores) whose fit first sleeps cost x samples / 100 x 1 s."""

    def __init__(self, C=1.0, cost=1, max_iter=200):
        super().__init__(C=C, max_iter=max_iter)
        self.cost = cost

    def fit(self, X, y, sample_weight=None):
        time.sleep(SECONDS_PER_100_SAMPLES * self.cost * len(X) / 100)
        return super().fit(X, y, sample_weight=sample_weight)
