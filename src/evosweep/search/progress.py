"""Fits done / total, elapsed and ETA, fed by the joblib backend as batches finish.

The backend calls `start_call()` at each Parallel call (one per halving iteration),
`submitted(calls)` with each batch's (function, args, kwargs) and `completed(n)` when a batch of
n fits comes back. scikit-learn's searches pass each fit `candidate_progress=(i, candidates)` and
`split_progress=(j, splits)`, which give the call's number of fits. Other Parallel calls under the
same backend (a random forest building its trees in the refit) are not search fits: done never
counts more fits than the search has submitted.
"""

from __future__ import annotations

import logging
import math
import threading
import time

log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class FitProgress:
    def __init__(self, min_interval: float = 2.0):
        self.min_interval = min_interval
        self.started = time.perf_counter()
        self.total = 0  # fits announced so far
        self.done = 0
        self._submitted = 0  # search fits sent so far
        self._call_announced = False
        self._searching = False  # the current Parallel call is the search's
        self._last_logged = 0.0
        self._lock = threading.Lock()

    def start_call(self) -> None:
        self._call_announced = False

    def submitted(self, calls) -> None:
        if not calls:
            return
        if not self._call_announced:
            self._call_announced = True
            self._searching = self._announce(calls[0][2])
        if self._searching:
            with self._lock:
                self._submitted += len(calls)

    def _announce(self, kwargs) -> bool:
        """Whether a Parallel call is a search's (its first fit's kwargs); log its fits."""
        if "candidate_progress" not in kwargs or "split_progress" not in kwargs:
            return False
        candidates, splits = kwargs["candidate_progress"][1], kwargs["split_progress"][1]
        with self._lock:
            self.total += candidates * splits
        log.info(
            "Fitting %d folds for each of %d candidates, totalling %d fits",
            splits,
            candidates,
            candidates * splits,
        )
        return True

    def completed(self, n_fits: int) -> None:
        with self._lock:
            done = min(self.done + n_fits, self._submitted)
            if done == self.done:
                return
            self.done = done
            now = time.perf_counter()
            if now - self._last_logged < self.min_interval and self.done < self.total:
                return
            self._last_logged = now
        log.info("%s", self.status())

    def status(self) -> str:
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else float("inf")
        percent = 100.0 * self.done / self.total if self.total else 0.0
        return (
            f"progress: {self.done}/{self.total} fits ({percent:.0f}%), "
            f"elapsed {duration(elapsed)}, ETA {duration(remaining)}"
        )
