"""The journal's store: one SQLite file of finished results that survives SIGKILL.

One file per search or evolution run (results/checkpoints/.../{name}.journal, beside its
checkpoint, never a Snakemake output): `entries` maps a key (what determines one result) to the
pickled result, `meta` holds the identity of the run that wrote it. Each record is one
transaction, so a kill at any moment leaves every finished record readable; a journal written
for another configuration is ignored (with a log line) and started afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SUFFIX = ".journal"
_LOOKUP_CHUNK = 500  # keys per SELECT, well under SQLite's limit on parameters


def path_for(checkpoint) -> Path:
    """The journal that sits beside a checkpoint file."""
    return Path(checkpoint).with_suffix(SUFFIX)


def remove_files(path) -> None:
    """The journal and SQLite's write-ahead files."""
    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def remove_resume_point(checkpoint) -> None:
    """The outputs exist: the checkpoint and its journal would only resume a finished run."""
    checkpoint = Path(checkpoint)
    if checkpoint.exists():
        checkpoint.unlink()
        log.info("outputs written; removed checkpoint %s", checkpoint)
    if path_for(checkpoint).exists():
        remove_files(path_for(checkpoint))
        log.info("outputs written; removed journal %s", path_for(checkpoint))


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
