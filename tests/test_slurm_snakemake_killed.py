"""SIGKILL of Snakemake while a search (ipyparallel engines) or an evolutionary search (SCOOP)
runs as a Slurm job spread over two nodes of the test cluster.

- The login node's Snakemake: the batch job does not depend on it, so the job keeps running and
  its work goes on; a `scancel` of the job then leaves no process of the run alive 60 s later.
- Either of the job's Snakemakes (the batch step's runs the rule through a second one, the rule's
  parent): the rule follows both (evosweep.runtime.snakemake), stops its engines or SCOOP workers on both
  nodes, and the job ends FAILED; no process of the run is alive 60 s later.

The fits wait a fixed time (slow_fits.SlowSVC), so the work outlasts the test on any host.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import slurm_snakemake
from slow_fits import STARTED, slow_models
from slurm_cluster import NODES, REPO, TESTS, derived_profile, node_netns, sacct
from workflow_runner import write_config

pytestmark = pytest.mark.slurm

ORPHAN_SECONDS = 60
# Bounds for the failure case only: each is far above what the event takes.
EVENT_SECONDS = 300
SACCT_SECONDS = 60
FIT_SECONDS = "2"

CONFIG = {
    "seed": 1,
    "datasets": {"iris": {"source": "sklearn:iris", "test_size": 0.3}},
    "search": {
        "engines": None,  # the job's tasks
        # 120 fits of 2 s on 2 engines: a minute of work after the engines are up; the
        # evolution's 24 fits of 2 s per generation on 2 workers: ten minutes.
        "models": slow_models(grid_points=40),
    },
    "evolve": {"workers": None, "problems": {}},
    "report": {"scaling_in_default": False},
}
RULES = {"slow_grid": "search", "slow_evolution": "search_evolutionary"}
# The lines that show a rule's work going on.
PROGRESS = re.compile(r"progress: \d+/\d+ fits|generation \d+/\d+:")
SPREAD = {"nodes": 2, "tasks": 2}  # one worker per node
SLURM_DAEMONS = {"slurmd", "slurmstepd"}
ENDED = ("PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "COMPLETING")


def _until(condition, what: str, timeout: float = EVENT_SECONDS, interval: float = 0.2):
    """Poll `condition()` until it returns something true; fail naming `what` at the bound."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(interval)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # gone meanwhile
        return []


def _describe(processes) -> list[tuple[int, str]]:
    return [(process.pid, " ".join(_cmdline(process))[:120]) for process in processes]


def _is_snakemake(cmdline: list[str]) -> bool:
    if any(Path(arg).name == "snakemake" for arg in cmdline[:2]):
        return True
    return any(a == "-m" and b == "snakemake" for a, b in zip(cmdline, cmdline[1:], strict=False))


def _is_worker(cmdline: list[str]) -> bool:
    """An ipyparallel engine or a SCOOP worker (the origin included)."""
    text = " ".join(cmdline)
    return "evosweep.engines.engine" in text or ("scoop_secure" in text and " worker" in text)


def job_processes(job: str) -> dict[psutil.Process, str]:
    """Every live process of Slurm job `job` (SLURM_JOB_ID in its environment) on any node but
    Slurm's own daemons, with the node whose network namespace it is in."""
    nodes = {os.stat(node_netns(node)).st_ino: node for node in NODES}
    found = {}
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] in SLURM_DAEMONS or not _alive(process):
                continue
            if process.environ().get("SLURM_JOB_ID") != job:
                continue
            found[process] = nodes.get(os.stat(f"/proc/{process.pid}/ns/net").st_ino, "login")
        except (psutil.Error, OSError):  # gone meanwhile
            continue
    return found


def progress_lines(log: Path) -> int:
    return len(PROGRESS.findall(log.read_text())) if log.exists() else 0


def assert_all_gone(processes) -> None:
    _, alive = psutil.wait_procs(list(processes), timeout=ORPHAN_SECONDS)
    alive = [p for p in alive if _alive(p)]
    assert not alive, _describe(alive)


def job_state(job: str) -> str:
    rows = sacct(job, fields=["JobID", "State"], allocations=True)
    return rows[0]["State"] if rows else ""


def wait_for_end(job: str) -> str:
    """The job's final sacct state (the accounting record follows the job's end)."""
    return _until(
        lambda: (state := job_state(job)) and not state.startswith(ENDED) and state,
        f"job {job} ends in sacct",
        timeout=SACCT_SECONDS,
        interval=0.5,
    )


class Run:
    """`snakemake --profile` (profiles/slurm, the rule spread over 2 nodes) for one model,
    started from the login node in a session of its own."""

    def __init__(self, workdir: Path, model: str):
        self.workdir, self.model = workdir, model
        self.log = workdir / "logs" / "search" / f"{model}.log"
        self.output = workdir / "snakemake.out"
        profile = derived_profile(workdir / ".slurm-profile", {RULES[model]: SPREAD})
        env = dict(
            os.environ,
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            # Snakemake, the job and its engines or workers import slow_fits from tests/.
            PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
            EVOSWEEP_TEST_FIT_SECONDS=FIT_SECONDS,
        )
        with open(self.output, "w") as output:
            self.snakemake = subprocess.Popen(
                [*slurm_snakemake.COMMAND, "-s", str(REPO / "Snakefile")]
                + ["-d", str(workdir), "--profile", str(profile), *slurm_snakemake.FAST_POLLING]
                # A failed job stays failed: no retry replaces it while the test looks on.
                + ["--retries=0", f"results/search/{model}/summary.json"]
                + ["--configfile", str(write_config(workdir, CONFIG))],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text()

    def run_id(self) -> str | None:
        match = re.search(r"SLURM run ID: ([0-9a-f-]{36})", self.text())
        return match.group(1) if match else None

    def wait_for_workers(self) -> None:
        """Until the rule logs that its workers run (Snakemake must not end first)."""

        def started():
            code = self.snakemake.poll()
            assert code is None, f"snakemake ended ({code}):\n{self.text()[-4000:]}"
            return self.log.exists() and STARTED[self.model] in self.log.read_text()

        _until(started, f"{STARTED[self.model]!r} in {self.log}")

    def job(self) -> str:
        run_id = self.run_id()
        assert run_id, self.text()[-4000:]
        rule = RULES[self.model]

        comment = f"rule_{rule}_wildcards_{self.model}"

        def rule_jobs():
            # squeue, not sacct: the accounting record has the job's comment only once it ends.
            listing = subprocess.run(
                ["squeue", "-h", f"--name={run_id}", "-o", "%i|%k"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
            rows = [line.split("|", 1) for line in listing.splitlines()]
            return [job for job, text in rows if text == comment]  # data preparation has its own

        jobs = _until(rule_jobs, f"squeue lists the {rule} job of run {run_id}", SACCT_SECONDS)
        assert len(jobs) == 1, jobs
        return jobs[0]

    def close(self) -> None:
        """Whatever failed: no Snakemake, job or process of this run outlives the test."""
        if self.snakemake.poll() is None:
            os.killpg(self.snakemake.pid, signal.SIGKILL)
            self.snakemake.wait()
        run_id = self.run_id()
        if run_id:
            subprocess.run(["scancel", f"--name={run_id}"], capture_output=True, timeout=60)


@pytest.fixture
def run_of(slurm_cluster, tmp_path):
    runs = []

    def start(model: str) -> Run:
        runs.append(Run(tmp_path, model))
        return runs[-1]

    yield start
    for run in runs:
        run.close()


def started_job(run: Run) -> tuple[str, dict[psutil.Process, str]]:
    """The run's job and its processes, once its workers run on two nodes."""
    run.wait_for_workers()
    job = run.job()
    processes = job_processes(job)
    workers = {node for process, node in processes.items() if _is_worker(_cmdline(process))}
    assert len(workers) == 2, (workers, [(node, _cmdline(p)) for p, node in processes.items()])
    return job, processes


@pytest.mark.parametrize("model", sorted(STARTED))
def test_sigkill_of_login_snakemake_leaves_the_job_running_and_scancel_ends_it(run_of, model):
    run = run_of(model)
    job, processes = started_job(run)
    seen = progress_lines(run.log)

    run.snakemake.send_signal(signal.SIGKILL)
    run.snakemake.wait()
    # The batch job does not depend on the login node's Snakemake: its work goes on ...
    _until(lambda: progress_lines(run.log) > seen, f"{run.log} shows more work")
    assert job_state(job) == "RUNNING"
    stopped = [p for p in processes if not _alive(p)]
    assert not stopped, _describe(stopped)

    # ... until the job is cancelled, which leaves nothing of the run behind on any node.
    subprocess.run(["scancel", job], check=True, capture_output=True, timeout=60)
    assert_all_gone(job_processes(job).keys() | processes.keys())
    assert wait_for_end(job).startswith("CANCELLED")
    assert not job_processes(job)


@pytest.mark.parametrize(
    ("model", "which"),
    [("slow_grid", "outer"), ("slow_evolution", "outer"), ("slow_grid", "inner")],
)
def test_sigkill_of_the_jobs_snakemake_ends_every_process_of_the_run(run_of, model, which):
    """The batch step's Snakemake ("outer") runs the rule through a second one ("inner", the
    rule's parent); the rule follows both, so either one killed ends the run, even where Slurm
    tracks a job's processes by parent PID and loses those whose parent died."""
    run = run_of(model)
    job, processes = started_job(run)
    snakemakes = [p for p in processes if _is_snakemake(_cmdline(p))]
    # The inner one has no Snakemake below it.
    inner = [
        p
        for p in snakemakes
        if not any(_is_snakemake(_cmdline(child)) for child in p.children(recursive=True))
    ]
    outer = [p for p in snakemakes if p not in inner]
    assert len(inner) == 1 and len(outer) == 1, _describe(snakemakes)

    (inner if which == "inner" else outer)[0].send_signal(signal.SIGKILL)
    assert_all_gone(processes)
    assert not job_processes(job)
    state = wait_for_end(job)
    assert state == "FAILED", state
