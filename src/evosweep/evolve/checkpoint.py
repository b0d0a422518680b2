"""Resumable state: written atomically, ignored when it belongs to a different configuration."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pickle
from pathlib import Path

from evosweep.errors import EvosweepError

FORMAT_VERSION = 1

log = logging.getLogger(__name__)


def fingerprint(spec: dict) -> str:
    """Identity of a run: everything that changes its results (never worker counts or paths)."""
    payload = json.dumps({"version": FORMAT_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def save(path: str | Path, state: dict) -> None:
    """tmp + fsync + os.replace: a kill mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def load(path: str | Path, expected_fingerprint: str) -> dict | None:
    """The saved state if it matches this run's configuration, else None (with a log line)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with open(path, "rb") as handle:
            state = pickle.load(handle)
    except Exception as error:  # noqa: BLE001 - an unreadable checkpoint only costs a restart
        log.warning("ignoring unreadable checkpoint %s (%s); starting from scratch", path, error)
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log.warning(
            "ignoring checkpoint %s: it was written for a different configuration; "
            "starting from scratch",
            path,
        )
        return None
    log.info("resuming from checkpoint %s at generation %d", path, state["generation"])
    return state


class CheckpointBusy(EvosweepError):
    """Another live process holds the checkpoint's writer lock."""


@contextlib.contextmanager
def writer_lock(path: str | Path):
    """Hold the checkpoint's lock while this process may write it, so two processes (an orphan
    and its rerun, two launches of one problem) never write one checkpoint. The kernel drops the
    lock when its holder dies, SIGKILL included, so a killed run never blocks its rerun."""
    lock_path = Path(path).with_name(Path(path).name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CheckpointBusy(
            f"evolve error: another process is writing checkpoint {path}; wait for it to end "
            f"or stop it"
        ) from None
    try:
        yield
    finally:
        os.close(fd)
