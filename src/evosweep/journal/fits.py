"""scikit-learn's fits journalled as the joblib backend sees them (`FitJournal.submit`).

A batch whose fits are all journalled completes at once with the journalled results; its other
fits go to the engines and their results are journalled as they come back. What a fit is, and
how a batch is cut, is the business of `sklearn_joblib` (scikit-learn's and joblib's internals).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import pickle
import threading

from evosweep.journal import sklearn_joblib
from evosweep.journal.store import Journal

PICKLE_PROTOCOL = 4  # fixed, so fit keys do not change with Python's default
COMPLETER_THREAD = "evosweep-journal"


class FitJournal(Journal):
    """The fits of one scikit-learn search, journalled by the joblib backend (`submit`)."""

    what = "fits"

    def __init__(self, path, identity: dict):
        super().__init__(path, identity)
        self.reused = 0  # fits answered from the journal
        self.sent = 0  # fits sent to the engines
        self._digests: dict[int, tuple[object, str]] = {}
        self._digests_lock = threading.Lock()
        # Completes the batches answered from the journal, as the engines' results would be:
        # on another thread than the one submitting, so joblib never recurses into itself.
        self._completer = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=COMPLETER_THREAD
        )

    @staticmethod
    def answering() -> bool:
        """True while a batch answered from the journal completes (on the journal's thread):
        joblib then times a batch that ran nowhere, which says nothing about batch sizes."""
        return threading.current_thread().name.startswith(COMPLETER_THREAD)

    def close(self) -> None:
        self._completer.shutdown(wait=False)
        super().close()

    def _digest(self, data) -> str:
        """Hash of X or y, once per object (every fit of a search gets the same ones)."""
        from joblib import hash as joblib_hash

        if data is None:
            return "none"
        entry = self._digests.get(id(data))
        if entry is None or entry[0] is not data:
            entry = (data, joblib_hash(data))
            self._digests[id(data)] = entry  # keeps `data` alive, so its id is not reused
        return entry[1]

    def key(self, call) -> bytes | None:
        """What determines one fit: the data, the estimator with its params, the candidate's
        params, the fold's train and test indices (halving's n_samples resource subsamples
        them; another resource is one of the params), the scorer and fit options. None for a
        call that is not a fit: it is never journalled.

        Hashed from pickles (a fixed protocol) and raw index bytes: a few microseconds a fit,
        where joblib.hash costs hundreds. Pickles of equal values can differ (e.g. a set of
        strings, whose order varies by process): that costs a refit, never a wrong result."""
        import numpy as np

        fit = sklearn_joblib.as_fit(call)
        if fit is None:
            return None
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self._digest(fit.features).encode())
        digest.update(self._digest(fit.labels).encode())
        identity = (sklearn_joblib.FIT_FUNCTION, fit.config, fit.estimator)
        digest.update(pickle.dumps(identity, protocol=PICKLE_PROTOCOL))
        for name in sorted(fit.keywords):
            value = fit.keywords[name]
            digest.update(name.encode())
            if isinstance(value, np.ndarray):
                digest.update(f"{value.dtype.str}{value.shape}".encode())
                digest.update(np.ascontiguousarray(value).tobytes())
            else:
                digest.update(pickle.dumps(value, protocol=PICKLE_PROTOCOL))
        return digest.digest()

    def submit(self, batch, send, done):
        """Run one joblib batch: from the journal if it holds every fit, else its missing fits
        through `send` (which returns an object with `.future` and `.get(timeout)`). `done`
        is called with a future once the batch is finished."""
        with self._digests_lock:
            keys = [self.key(call) for call in sklearn_joblib.calls(batch)]
        return _JournalledBatch(self, batch, keys, send, done)


class _JournalledBatch:
    """A joblib batch whose journalled fits are answered locally and whose other fits run on
    the engines, their results journalled when they come back."""

    def __init__(self, journal: FitJournal, batch, keys, send, done):
        self._journal = journal
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.future.add_done_callback(done)
        found = journal.lookup([key for key in keys if key is not None])
        self._results = [found.get(key) if key is not None else None for key in keys]
        self._missing = [i for i, key in enumerate(keys) if key is None or key not in found]
        self._missing_keys = [keys[i] for i in self._missing]
        journal.reused += len(keys) - len(self._missing)
        self._recorded = False
        if not self._missing:
            self._inner = None
            journal._completer.submit(self.future.set_result, None)
            return
        journal.sent += len(self._missing)
        if len(self._missing) < len(keys):
            batch = sklearn_joblib.part(batch, self._missing)
        self._inner = send(batch)
        self._inner.future.add_done_callback(self._returned)

    def _record(self, results) -> None:
        if not self._recorded:
            self._journal.record(self._missing_keys, results)
            self._recorded = True

    def _returned(self, future) -> None:
        try:
            # Journalled here, on the client's thread, as soon as the batch is back: joblib
            # collects results in order, so a finished batch may wait behind a slower one.
            if future.exception() is None:
                self._record(future.result())
        finally:
            self.future.set_result(None)

    def get(self, timeout=None) -> list:
        if self._inner is not None:
            results = self._inner.get(timeout)  # resubmits the batch if its engine died
            self._record(results)
            for index, result in zip(self._missing, results, strict=True):
                self._results[index] = result
            self._inner = None
        return self._results
