"""Private run directories (0700, for keys and logs) that a later run can tell are stale, and
the owner records that tell it.

An owner record names a process by host, boot, PID, the PID's start time and Slurm job: a PID
alone may be reused. A directory whose owner is gone, e.g. killed with SIGKILL, is removed by
the next run that looks in the same place. The ipyparallel engines' work directories and the
SCOOP runs' key directories both live by these rules, and the engines and controller watch
their owner by its record.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import stat
import time
from pathlib import Path

from evosweep.runtime import slurm

log = logging.getLogger(__name__)

OWNER_FILE = "owner.json"
# A directory without an owner record is one being created, unless it is older than this.
UNRECORDED_STALE_SECONDS = 600.0


class RunDirError(RuntimeError):
    """The place for run directories is not this user's own."""


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a reused PID apart)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat_line.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def owner_record(pid: int | None = None) -> dict:
    pid = os.getpid() if pid is None else pid
    return {
        "host": socket.gethostname(),
        "boot": boot_id(),
        "pid": pid,
        "start": process_start_time(pid),
        "job": os.environ.get("SLURM_JOB_ID"),
    }


def on_this_host(record: dict) -> bool:
    """The record's process ran on this host since its last boot (so its PID means something)."""
    return record.get("host") == socket.gethostname() and record.get("boot", boot_id()) == boot_id()


def is_running(record: dict) -> bool:
    """The record's process still runs (on this host): same PID, same start time."""
    return process_start_time(record["pid"]) == record.get("start")


def owner_is_gone(record: dict) -> bool:
    if on_this_host(record):
        return not is_running(record)
    # Made on another node of a shared file system: only Slurm can tell its owner is gone.
    job = record.get("job")
    return bool(job) and job != os.environ.get("SLURM_JOB_ID") and slurm.job_gone(job)


def is_stale(path: Path) -> bool:
    try:
        record = json.loads((path / OWNER_FILE).read_text())
    except (OSError, ValueError):
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return False
        return age > UNRECORDED_STALE_SECONDS
    try:
        return owner_is_gone(record)
    except (LookupError, TypeError, AttributeError):
        return False  # a record of another shape: not ours to judge


def remove_stale(root: Path, prefix: str) -> list[Path]:
    """Remove this user's `prefix*` directories under `root` whose owner is gone."""
    removed = []
    for path in Path(root).glob(f"{prefix}*"):
        try:
            if not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if is_stale(path):
            log.info("removing %s, left by a run whose process is gone", path)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def private_root(root: Path) -> Path:
    """`root` as a 0700 directory of this user (made if missing), or RunDirError."""
    root = Path(root)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RunDirError(f"{root} is not a directory of this user; no keys go there")
    if info.st_mode & 0o077:
        root.chmod(0o700)
    return root


def create(root: Path, prefix: str, record: dict | None = None) -> Path:
    """A new 0700 directory `root/prefix<random>` with its owner record (default: this process),
    after removing the stale ones beside it."""
    root = Path(root)
    remove_stale(root, prefix)
    path = root / f"{prefix}{secrets.token_hex(8)}"
    path.mkdir(mode=0o700)
    # Written aside and renamed: a reader never sees half a record.
    partial = path / f".{OWNER_FILE}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(record or owner_record()))
    partial.rename(path / OWNER_FILE)
    return path
