"""A rule's process ends with the Snakemake that started it.

Snakemake runs a rule's script under a shell, so `kill -9` of Snakemake alone leaves the script,
and the engines or SCOOP workers it started, running on their own. `follow_snakemake()` turns the
end of the nearest Snakemake ancestor into a SIGTERM to this process, whose handlers stop what
it started and leave its journal and checkpoint up to date for the rerun.
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


def snakemake_ancestor() -> psutil.Process | None:
    for parent in psutil.Process().parents():
        try:
            if _is_snakemake(parent.cmdline()):
                return parent
        except psutil.Error:
            continue
    return None


def follow_snakemake() -> threading.Thread | None:
    """SIGTERM this process when its Snakemake ancestor ends (none found: nothing to follow)."""
    ancestor = snakemake_ancestor()
    if ancestor is None:
        return None
    try:
        pidfd = os.pidfd_open(ancestor.pid)
    except ProcessLookupError:
        os.kill(os.getpid(), signal.SIGTERM)
        return None

    def wait():
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)  # readable once the process has exited
        poller.poll()
        log.warning("Snakemake (pid %d) is gone; stopping this job", ancestor.pid)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=wait, name="snakemake-lifeline", daemon=True)
    thread.start()
    return thread
