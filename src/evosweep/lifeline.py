"""A rule's process ends with the Snakemake that started it.

Snakemake runs a rule's script under a shell, so `kill -9` of Snakemake alone leaves the script,
and the engines or SCOOP workers it started, running on their own. `follow_snakemake()` turns the
end of any Snakemake ancestor into a SIGTERM to this process, whose handlers stop what it started
and leave its journal and checkpoint up to date for the rerun. Any, not the nearest: in a Slurm
job the batch step's Snakemake runs the rule through a second one, and a site that tracks job
processes by parent PID loses whatever outlives the first.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


def _is_snakemake(cmdline: list[str]) -> bool:
    if any(Path(arg).name == "snakemake" for arg in cmdline[:2]):
        return True
    return any(a == "-m" and b == "snakemake" for a, b in zip(cmdline, cmdline[1:], strict=False))


def snakemake_ancestors() -> list[psutil.Process]:
    ancestors = []
    for parent in psutil.Process().parents():
        try:
            if _is_snakemake(parent.cmdline()):
                ancestors.append(parent)
        except psutil.Error:
            continue
    return ancestors


def follow_snakemake() -> threading.Thread | None:
    """SIGTERM this process when one of its Snakemake ancestors ends (none: nothing to follow)."""
    watched = {}  # pidfd -> pid
    for ancestor in snakemake_ancestors():
        try:
            watched[os.pidfd_open(ancestor.pid)] = ancestor.pid
        except ProcessLookupError:
            os.kill(os.getpid(), signal.SIGTERM)
            return None
    if not watched:
        return None

    def wait():
        poller = select.poll()
        for pidfd in watched:
            poller.register(pidfd, select.POLLIN)  # readable once the process has exited
        (pidfd, _), *_ = poller.poll()
        log.warning("Snakemake (pid %d) is gone; stopping this job", watched[pidfd])
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=wait, name="snakemake-lifeline", daemon=True)
    thread.start()
    return thread
