"""What a Snakemake process is, and the lifeline: a rule's process ends with the Snakemake that
started it.

Snakemake runs a rule's script under a shell, so `kill -9` of Snakemake alone leaves the script,
and the engines or SCOOP workers it started, running on their own. `follow_snakemake()` turns the
end of any Snakemake ancestor into a SIGTERM to this process, whose handlers (signals) stop what
it started and leave its journal and checkpoint up to date for the rerun. Any, not the nearest:
in a Slurm job the batch step's Snakemake runs the rule through a second one, and a site that
tracks job processes by parent PID loses whatever outlives the first.

`take_repeated_sigterms()`, called by the Snakefile, keeps a Snakemake process from hanging on a
second SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import psutil

from evosweep.runtime import lifetime

log = logging.getLogger(__name__)


def is_snakemake(cmdline: list[str]) -> bool:
    """The Snakemake program (`snakemake ...`, `python .../snakemake ...`, `python -m
    snakemake ...`) or a job it runs (`python .snakemake/scripts/tmpXXXX.rule.py`)."""
    if any(Path(arg).name == "snakemake" for arg in cmdline[:2]):
        return True
    if any(a == "-m" and b == "snakemake" for a, b in zip(cmdline, cmdline[1:], strict=False)):
        return True
    return any(".snakemake/scripts/" in arg for arg in cmdline)


def snakemake_ancestors() -> list[psutil.Process]:
    ancestors = []
    for parent in psutil.Process().parents():
        try:
            if is_snakemake(parent.cmdline()):
                ancestors.append(parent)
        except psutil.Error:
            continue
    return ancestors


def follow_snakemake() -> bool:
    """SIGTERM this process when one of its Snakemake ancestors ends; False: none to follow."""
    ancestors = {process.pid: process for process in snakemake_ancestors()}
    if not ancestors:
        return False

    def gone(pid: int) -> None:
        log.warning("Snakemake (pid %d) is gone; stopping this job", pid)
        os.kill(os.getpid(), signal.SIGTERM)

    if not lifetime.when_any_ends(ancestors, gone, "snakemake-lifeline"):
        os.kill(os.getpid(), signal.SIGTERM)  # one ended already
    return True


def take_repeated_sigterms() -> None:
    """Make Snakemake's SIGTERM handler safe to run while its scheduler holds its lock.

    Snakemake's JobScheduler.exit_gracefully takes the scheduler's lock, which is not
    reentrant, and a signal handler runs in the main thread, which holds that lock while it
    handles a finished or failed job: a SIGTERM arriving then makes the process wait on itself
    forever. A Slurm cancel or time limit signals the job's processes more than once, and a
    job's Snakemake hung so outlived its job on a site tracking processes by parent PID. The
    handler's work needs no lock: one attribute set, one semaphore release."""
    from snakemake.scheduling.job_scheduler import JobScheduler

    def exit_gracefully(scheduler, *_signal_args):
        scheduler._user_kill = "graceful"
        scheduler._open_jobs.release()

    JobScheduler.exit_gracefully = exit_gracefully
