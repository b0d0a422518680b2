"""joblib's backend on an ipyparallel load-balanced view: batches resubmitted when their engine
dies, a search's data sent to each engine once (engine_data), progress and journal hooks."""

from __future__ import annotations

import logging
import threading

import ipyparallel as ipp
from ipyparallel.client._joblib import IPythonParallelBackend

from evosweep.journal import sklearn_joblib

log = logging.getLogger(__name__)

BACKEND_NAME = "evosweep-ipyparallel"

# The engine run time of the batch whose completion this thread is reporting to joblib.
_finishing = threading.local()


def joblib_jobs(n_engines: int) -> int:
    """Jobs joblib keeps in flight: one per engine, but never 1, because joblib runs n_jobs=1
    in the calling process whatever the backend, and a 1-engine cluster must do the work."""
    return max(2, n_engines)


class _Batch:
    """A batch of joblib calls on the load-balanced view, resubmitted if its engine dies.

    Retrying here, not with the view's `retries`: the scheduler also retries a task that merely
    raised, each time on another engine, and once every engine has failed it the task waits for
    a new engine forever, so one bad fit would hang the search.
    """

    def __init__(self, view, func, retries: int):
        self._view = view
        self._func = func
        self._retries_left = retries
        self.future = view.apply_async(func)

    def get(self, timeout=None):
        while True:
            try:
                return self.future.get(timeout)
            except ipp.error.RemoteError as error:
                if error.ename != "EngineError" or self._retries_left <= 0:
                    raise
                self._retries_left -= 1
                log.warning("an engine died during a batch of tasks; resubmitting the batch")
                self.future = self._view.apply_async(self._func)

    def run_seconds(self):
        """Seconds the batch ran on its engine (None if unknown)."""
        try:
            return self.future.serial_time
        except Exception:  # not finished, or a reply without timestamps
            return None


class _ViewBackend(IPythonParallelBackend):
    """ipyparallel 9.2's joblib backend on joblib's current `submit` API (the stock one
    implements the deprecated `apply_async`: a DeprecationWarning on every Parallel call)."""

    # A task travels client -> scheduler -> engine and back, dearer than a loky pipe, so joblib's
    # auto-batching aims at batches of 1-2 s instead of 0.2-2 s (the 2 s cap bounds the tail).
    MIN_IDEAL_BATCH_DURATION = 1.0
    supports_timeout = True  # retrieve_result honours Parallel(timeout=...)

    def __init__(self, view, observer=None, journal=None, shared=None, **kwargs):
        super().__init__(view=view, **kwargs)
        # An engine_data.SharedData: the large arrays of the batches go to each engine once.
        self.shared = shared
        # Told of each Parallel call, each batch's calls and each finished batch (progress).
        self.observer = observer
        # Answers the fits it holds and records the others as they come back (resume).
        self.journal = journal

    def effective_n_jobs(self, n_jobs):
        # n_jobs=1 is a caller asking for serial work (a forest's trees in the search's refit):
        # joblib then runs it in this process. Otherwise one job per engine; the stock backend
        # answers len(view), which is 1 for a 1-engine cluster.
        if n_jobs == 1:
            return 1
        return joblib_jobs(len(self._view))

    def start_call(self):
        # Each Parallel call (each halving round) starts again from batches of one, as joblib's
        # process backends do: a batch size grown on one round's quick fits would give the next
        # round's slower fits a few big batches and leave engines idle.
        self.reset_batch_stats()
        if self.observer is not None:
            self.observer.start_call()

    def batch_completed(self, batch_size, duration):
        # A batch the journal answered ran on no engine: its time must not grow the batches.
        if self.journal is not None and self.journal.answering():
            return
        # joblib times a batch from its dispatch, so its wait in the scheduler's queue (one
        # batch per engine runs, as many again wait) counts as work: with many engines or a
        # busy controller the wait passed MAX_IDEAL_BATCH_DURATION and the batches shrank to
        # 1 call each. The batch's run time on its engine measures the work.
        run = getattr(_finishing, "seconds", None)
        if run is None:
            super().batch_completed(batch_size, duration)
            return
        # joblib learns only from batches of its current size, and 2 x n_jobs batches are in
        # flight when it changes: each size went out 2 x n_jobs times before one came back
        # (4 at 2 engines, 128 at 64). A run time per call, scaled to the current size, lets
        # every finished batch count; growth stays capped at doubling per batch.
        current = self._effective_batch_size
        super().batch_completed(current, run * current / max(1, batch_size))

    def submit(self, func, callback=None):
        observer = self.observer
        if observer is not None:
            observer.submitted(func.items)
        sent = []

        def done(future):
            if callback is not None:
                _finishing.seconds = sent[-1].run_seconds() if sent else None
                try:
                    callback(future)
                finally:
                    _finishing.seconds = None
            if observer is not None:
                observer.completed(len(func))

        def send(batch):
            batch = sklearn_joblib.without_idle_callbacks(batch)
            if self.shared is not None:
                batch = self.shared.prepare(batch)
            sent.append(_Batch(self._view, batch, retries=max(1, len(self._view))))
            return sent[-1]

        if self.journal is not None:
            return self.journal.submit(func, send, done)
        batch = send(func)
        batch.future.add_done_callback(done)
        return batch

    def retrieve_result(self, batch, timeout=None):
        return batch.get(timeout)
