"""Remove the lock a killed Snakemake left behind, but only when no Snakemake runs here.

Snakemake releases its lock (.snakemake/locks) on a normal exit, an error, Ctrl-C or SIGTERM;
after `kill -9` or a power loss the lock stays and every later run stops with a LockException
until `snakemake --unlock`. `make run` calls this module first, so it recovers by itself:

    python -m evosweep.runtime.stalelock [SNAKEMAKE-ARGS...]   # e.g. --configfile FILE

A lock is stale when no process on this host runs Snakemake (or one of its jobs) with this
directory as its working directory: Snakemake changes into its working directory (`-d`), so
that is where its processes are found. Snakemake records no host in its lock files, so a run
started from another host on a shared file system cannot be seen; unlock by hand there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from evosweep.runtime.snakemake import is_snakemake

LOCK_DIR = Path(".snakemake") / "locks"


def snakemake_processes(directory: str | Path = ".") -> list[psutil.Process]:
    """Live Snakemake processes (and jobs) working in `directory`, leaving out this process
    and its ancestors (the `make` recipe that called it)."""
    directory = os.path.realpath(directory)
    ours = {os.getpid()} | {parent.pid for parent in psutil.Process().parents()}
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        info = process.info
        if info["pid"] in ours or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if not info["cmdline"] or not is_snakemake(info["cmdline"]):
            continue
        try:
            cwd = process.cwd()
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            # Another user's Snakemake: only count it when its command names this directory.
            if not any(directory in arg for arg in info["cmdline"]):
                continue
            cwd = directory
        if os.path.realpath(cwd) == directory:
            found.append(process)
    return found


def has_lock(directory: str | Path = ".") -> bool:
    locks = Path(directory) / LOCK_DIR
    return locks.is_dir() and any(locks.iterdir())


def unlock_if_stale(snakemake_args: list[str], directory: str | Path = ".") -> int:
    """Run `snakemake --unlock ARGS` when the directory holds a lock that no live Snakemake
    owns; return its exit code (0 when there was nothing to do)."""
    if not has_lock(directory):
        return 0
    running = snakemake_processes(directory)
    if running:
        pids = ", ".join(str(p.pid) for p in running)
        print(
            f"evosweep: Snakemake is running in {os.path.realpath(directory)} (pid {pids}); "
            "its lock stays",
            file=sys.stderr,
        )
        return 0
    print(
        "evosweep: removing the lock a killed Snakemake run left (no Snakemake process runs in "
        f"{os.path.realpath(directory)})",
        file=sys.stderr,
    )
    snakemake = Path(sys.executable).parent / "snakemake"
    command = [str(snakemake), "--unlock", *snakemake_args]
    return subprocess.run(command, cwd=directory, stdout=subprocess.DEVNULL, check=False).returncode


if __name__ == "__main__":
    sys.exit(unlock_if_stale(sys.argv[1:]))
