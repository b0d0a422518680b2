"""Stopping a cluster: the engines exit on their own after a shutdown request, the controller
last, and only what is left is signalled."""

from __future__ import annotations

import contextlib
import logging
import time

import ipyparallel as ipp

log = logging.getLogger(__name__)

# Seconds the engines (and so the srun step) get to exit on their own after a shutdown request.
ENGINE_EXIT_SECONDS = 5
SRUN_STEP_EXIT_SECONDS = 30


def stop_cluster(cluster: ipp.Cluster, client: ipp.Client | None, slurm: bool) -> None:
    """Ask the engines to exit (they exit 0), let them and the srun step end on their own,
    then stop the controller and whatever is left.

    The launchers are only signalled (by stop_cluster_sync) if they have not exited in time:
    a signalled srun step ends CANCELLED/FAILED in sacct, one that ends by itself COMPLETED.
    The controller stops last, so engines never lose it while shutting down.
    """
    if client is not None:
        with contextlib.suppress(Exception):
            if client.ids:
                # No waiting for replies: an engine that dies first would never send one.
                # Waiting for the processes below is bounded.
                client.shutdown(targets="all", hub=False, block=False)
        with contextlib.suppress(Exception):
            _wait_engine_launchers(
                cluster, timeout=SRUN_STEP_EXIT_SECONDS if slurm else ENGINE_EXIT_SECONDS
            )
        with contextlib.suppress(Exception):
            client.close()
    with contextlib.suppress(Exception):
        cluster.stop_cluster_sync()


def _engine_processes(cluster: ipp.Cluster) -> list:
    """The launchers' processes: the local engine program that forks the engines, or srun."""
    processes = []
    for engine_set in cluster.engines.values():
        launchers = getattr(engine_set, "launchers", None)
        if launchers is not None:
            processes += [launcher.process for launcher in launchers.values()]
        else:
            processes.append(getattr(engine_set, "process", None))
    return [process for process in processes if process is not None]


def _wait_engine_launchers(cluster: ipp.Cluster, timeout: float) -> bool:
    """Wait up to `timeout` s for every engine launcher process to exit; True if all did."""
    deadline = time.monotonic() + timeout
    done = True
    for process in _engine_processes(cluster):
        try:
            code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # psutil.TimeoutExpired, or the process is gone
            done = done and not _is_running(process)
            continue
        if code:  # None: already reaped by the launcher's own wait thread
            log.warning("engine launcher %s exited with code %s", process.pid, code)
    if not done:
        log.warning("engines did not exit within %g s of the shutdown request", timeout)
    return done


def _is_running(process) -> bool:
    try:
        return process.is_running() and process.status() != "zombie"
    except Exception:
        return False
