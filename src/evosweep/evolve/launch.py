"""Launch one evolution run in a SCOOP origin (or serially) and return its RunResult.

The parent side of the boundary: writes the RunSpec, starts `python -m scoop` (through the srun
shim inside a Slurm allocation), streams the origin's progress lines into the rule log and
reads back the RunResult the origin pickled.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

from evosweep import allocation
from evosweep.errors import EvosweepError
from evosweep.evolve.spec import RunResult, RunSpec

HERE = Path(__file__).resolve().parent
SCOOP_MAIN = HERE / "__main__.py"
SRUN_SHIM = HERE / "srun_ssh.sh"
SRC_DIR = HERE.parents[1]

log = logging.getLogger(__name__)


class EvolveError(EvosweepError):
    """The evolution could not run or did not finish."""


def write_hostfile(path: Path, hosts: list[str], workers: int) -> Path:
    """SCOOP hostfile spreading `workers` round-robin over `hosts`."""
    counts = [workers // len(hosts) + (i < workers % len(hosts)) for i in range(len(hosts))]
    path.write_text("".join(f"{h} {n}\n" for h, n in zip(hosts, counts, strict=True) if n))
    return path


def origin_command(spec_path: Path, result_path: Path, workers: int, map_mode="scoop") -> list:
    """The command that runs the origin: under `python -m scoop` for the SCOOP map."""
    command = [sys.executable]
    if map_mode == "scoop":
        command += ["-m", "scoop", "-n", str(workers)]
        if allocation.in_slurm_job():
            # SCOOP's only remote launcher is ssh: it gets a stand-in that starts each host's
            # workers as an srun step inside this allocation (no sshd, no keys).
            hosts = allocation.job_hosts()
            hostfile = write_hostfile(spec_path.with_suffix(".hosts"), hosts, workers)
            command += ["--hostfile", str(hostfile), "--ssh-executable", str(SRUN_SHIM)]
    return command + [
        str(SCOOP_MAIN),
        *("--spec", str(spec_path), "--result", str(result_path), "--map", map_mode),
    ]


def launch(run: RunSpec, map_mode: str = "scoop") -> RunResult:
    """Run `run` under SCOOP with `run.workers` workers (or serially); return its result."""
    state_dir = Path(run.checkpoint).parent
    state_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(run.checkpoint).stem
    spec_path = state_dir / f"{stem}.run.json"
    result_path = state_dir / f"{stem}.result.pkl"
    result_path.unlink(missing_ok=True)
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
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        for line in process.stderr:
            log.info("%s", line.rstrip())
        process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        _end_group(process)
    if not result_path.exists():
        raise EvolveError(
            f"evolve error: problem {run.name!r} did not finish (exit code "
            f"{process.returncode}); see the lines above in this log"
        )
    with open(result_path, "rb") as handle:
        result = pickle.load(handle)
    result_path.unlink()
    spec_path.unlink(missing_ok=True)
    spec_path.with_suffix(".hosts").unlink(missing_ok=True)
    return result


class Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise Terminated(f"terminated by signal {signum}")


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
