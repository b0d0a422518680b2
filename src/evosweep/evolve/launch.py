"""Launch one evolution run in a SCOOP origin (or serially) and return its RunResult.

The parent side of the boundary: writes the RunSpec, starts the origin under scoop_launcher
(SCOOP's broker and workers, authenticated, on one address), streams the origin's progress
lines into the rule log and reads back the RunResult the origin pickled.
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from evosweep import allocation
from evosweep.errors import EvosweepError
from evosweep.evolve.spec import RunResult, RunSpec
from evosweep.runtime import addresses
from evosweep.runtime.signals import Interrupted, stop_on_signals

HERE = Path(__file__).resolve().parent
SCOOP_MAIN = HERE / "__main__.py"
SRC_DIR = HERE.parents[1]

log = logging.getLogger(__name__)


class EvolveError(EvosweepError):
    """The evolution could not run or did not finish."""


def origin_command(spec_path: Path, result_path: Path, workers: int, map_mode="scoop") -> list:
    """The command that runs the origin: under scoop_launcher for the SCOOP map."""
    command = [sys.executable]
    if map_mode == "scoop":
        # SCOOP's broker and workers bound to one address, CURVE on every socket, ending with
        # this process; in a Slurm job the other nodes' workers start as srun steps.
        command += ["-m", "evosweep.evolve.scoop_launcher", "-n", str(workers)]
        command += ["--parent", str(os.getpid())]
        if allocation.in_slurm_job():
            cpus = allocation.cpus_per_worker()
            hosts, slots = zip(*allocation.job_slots(cpus)[:workers], strict=True)
            command += ["--hosts", *hosts, "--slots", *map(str, slots)]
            command += ["--address", addresses.bind_address(len(hosts) > 1)]
            command += ["--cpus-per-worker", str(cpus)]
            # The run's keys must be readable on the other nodes: the shared state directory.
            command += ["--runtime-root", str(spec_path.parent / ".scoop")]
        command.append("--")
    return command + [
        str(SCOOP_MAIN),
        *("--spec", str(spec_path), "--result", str(result_path), "--map", map_mode),
    ]


def launch(run: RunSpec, map_mode: str = "scoop") -> RunResult:
    """Run `run` under SCOOP with `run.workers` workers (or serially); return its result."""
    state_dir = Path(run.checkpoint).parent
    state_dir.mkdir(parents=True, exist_ok=True)
    # Each launch has its own files: a leftover of another launch is never taken for this one's.
    stem = f"{Path(run.checkpoint).stem}.{os.getpid()}-{secrets.token_hex(4)}"
    spec_path = state_dir / f"{stem}.run.json"
    result_path = state_dir / f"{stem}.result.pkl"
    run.write(spec_path)
    command = origin_command(spec_path, result_path, run.workers, map_mode)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC_DIR), env.get("PYTHONPATH")]))
    log.info("launching: %s", " ".join(command))
    # Own session: on SIGTERM (Slurm time limit, Snakemake stop) the whole SCOOP tree is ended.
    process = subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    log.info("SCOOP launcher pid %d (leads its own process group)", process.pid)
    # Any stop signal (SIGUSR1 too, a time-limit warning) ends the group with SIGTERM: the origin
    # checkpoints and every process ends.
    with stop_on_signals():
        try:
            for line in process.stderr:
                log.info("%s", line.rstrip())
            process.wait()
        except Interrupted as stop:
            name = signal.Signals(stop.signum).name
            log.warning("evolution %s terminated by signal %d (%s)", run.name, stop.signum, name)
            raise
        finally:
            _end_group(process)
    spec_path.unlink(missing_ok=True)
    if not result_path.exists():
        raise EvolveError(
            f"evolve error: problem {run.name!r} did not finish (exit code "
            f"{process.returncode}); see the lines above in this log"
        )
    with open(result_path, "rb") as handle:
        result = pickle.load(handle)
    result_path.unlink()
    return result


def _end_group(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        # The launcher is gone; make sure no worker of its session outlives it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
