"""A journal of finished work that survives SIGKILL, so a killed search or evolution redoes only
what was in flight.

One SQLite file per search or evolution run (results/checkpoints/.../{name}.journal, beside its
checkpoint, never a Snakemake output): `entries` maps a key (what determines one result) to the
pickled result, `meta` holds the identity of the run that wrote it. Each record is one
transaction, so a kill at any moment leaves every finished record readable; a journal written
for another configuration is ignored (with a log line) and started afresh.

- `Journal`: the store (`lookup`, `record`), used as is for evolution evaluations keyed by genome.
- `FitJournal`: scikit-learn's fits as the joblib backend sees them (`submit`): a batch whose fits
  are all journalled completes at once with the journalled results; the others go to the engines
  and their results are journalled as they come back.
- `stop_on_signals`, `signal_name`, `Interrupted`: evosweep.runtime.signals', re-exported for
  the search stage.
"""

from __future__ import annotations

import concurrent.futures
import copy
import hashlib
import json
import logging
import pickle
import sqlite3
import threading
from pathlib import Path

from evosweep.runtime.signals import Interrupted, signal_name, stop_on_signals  # noqa: F401

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SUFFIX = ".journal"
# scikit-learn's one fit: what a search's joblib batches call, and what the journal keys.
FIT_FUNCTION = ("sklearn.model_selection._validation", "_fit_and_score")
# Arguments of a fit that only report progress or reach callbacks: they never change its result.
UNKEYED_ARGUMENTS = frozenset(
    {"split_progress", "candidate_progress", "verbose", "caller", "callback_ctx"}
)
_LOOKUP_CHUNK = 500  # keys per SELECT, well under SQLite's limit on parameters
PICKLE_PROTOCOL = 4  # fixed, so fit keys do not change with Python's default
COMPLETER_THREAD = "evosweep-journal"


def path_for(checkpoint) -> Path:
    """The journal that sits beside a checkpoint file."""
    return Path(checkpoint).with_suffix(SUFFIX)


def remove_files(path) -> None:
    """The journal and SQLite's write-ahead files."""
    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def fingerprint(identity: dict) -> str:
    payload = json.dumps({"version": FORMAT_VERSION, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class Journal:
    """Results keyed by bytes, in the SQLite file `path`, for the run whose identity is
    `identity` (a JSON-able dict of everything that changes the results)."""

    what = "results"

    def __init__(self, path, identity: dict, what: str | None = None):
        self.what = what or self.what  # what the entries are, for log lines
        self.path = Path(path)
        self.fingerprint = fingerprint(identity)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as error:
            log.warning("ignoring unreadable journal %s (%s); starting afresh", self.path, error)
            remove_files(self.path)
            self._db = self._open()
        self._keys = {row[0] for row in self._db.execute("SELECT key FROM entries")}
        self.found_at_start = len(self._keys)
        if self.found_at_start:
            log.info(
                "journal %s holds %d %s of an interrupted run",
                self.path,
                self.found_at_start,
                self.what,
            )

    def _open(self) -> sqlite3.Connection:
        # One connection shared by the threads that record results (guarded by _lock).
        db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        # WAL: a commit is an append to the -wal file; synchronous=NORMAL skips the fsync per
        # commit, which costs durability only on power loss, never consistency or a kill's.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS entries (key BLOB PRIMARY KEY, value BLOB)")
            row = db.execute("SELECT value FROM meta WHERE name = 'identity'").fetchone()
            if row is None or row[0] != self.fingerprint:
                stale = db.execute("SELECT count(*) FROM entries").fetchone()[0]
                if stale:
                    log.warning(
                        "ignoring journal %s: its %d %s were written for a different "
                        "configuration; starting afresh",
                        self.path,
                        stale,
                        self.what,
                    )
                db.execute("DELETE FROM entries")
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('identity', ?)", (self.fingerprint,)
                )
        return db

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: bytes) -> bool:
        return key in self._keys

    def lookup(self, keys) -> dict:
        """{key: result} for the keys the journal holds."""
        wanted = [key for key in keys if key in self._keys]
        found = {}
        with self._lock:
            if self._db is None:
                return found
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk
                )
                found.update((key, pickle.loads(value)) for key, value in rows)
        return found

    def record(self, keys, results) -> None:
        """Journal finished results, in one transaction."""
        rows = [
            (key, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
            for key, result in zip(keys, results, strict=True)
            if key is not None
        ]
        if not rows:
            return
        with self._lock:
            if self._db is None:  # closed: the run is stopping
                return
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?)", rows)
            self._keys.update(key for key, _ in rows)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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

        function, args, kwargs = call
        inner = getattr(function, "function", function)  # scikit-learn's config wrapper
        if (getattr(inner, "__module__", None), getattr(inner, "__name__", None)) != FIT_FUNCTION:
            return None
        if len(args) != 3:
            return None
        estimator, features, labels = args
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self._digest(features).encode())
        digest.update(self._digest(labels).encode())
        config = getattr(function, "config", None)
        digest.update(pickle.dumps((FIT_FUNCTION, config, estimator), protocol=PICKLE_PROTOCOL))
        for name in sorted(kwargs):
            if name in UNKEYED_ARGUMENTS:
                continue
            value = kwargs[name]
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
            keys = [self.key(call) for call in batch.items]
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
            partial = copy.copy(batch)
            partial.items = [batch.items[i] for i in self._missing]
            partial._size = len(partial.items)  # joblib's BatchedCalls reports it as len()
            batch = partial
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
