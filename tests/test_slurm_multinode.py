"""Every parallel stage across the nodes of the Slurm test cluster, through `snakemake --profile`.

One run from the login namespace asks for 3 tasks on 3 nodes for the searches and evolutions:
ipyparallel engines (one srun step) and SCOOP workers (srun steps) then run on several nodes and
reach the controller / broker on the batch node's cluster address. Its results must equal those
of a local run of the same config. In the same run a second search loses the engine of one node
in the middle of a fit; the controller notices, the batch goes to the remaining engines, and the
search still ends with the local run's results in its first (and only) Slurm job.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from helpers.evolve_results import comparable
from helpers.node_faults import MARKER_VARIABLE, NODE_VARIABLE
from helpers.slurm_cluster import (
    NODES,
    TESTS,
    hostnames,
    jobs_by_name,
    node_address,
    node_pids,
    run_on_slurm,
    sacct,
)
from helpers.waiting import wait_until
from helpers.workflow_runner import snakemake

pytestmark = pytest.mark.slurm

SPACE = {"C": {"logspace": [-1, 1, 3]}, "gamma": [0.01, 0.1]}  # 6 candidates x 3 folds
CONFIG = {
    "seed": 5,
    "datasets": {"iris": {"source": "sklearn:iris", "test_size": 0.3}},
    "search": {
        "engines": None,  # the job's tasks on Slurm, the local cores locally
        "models": {
            "svc_iris": {
                "dataset": "iris",
                "estimator": "sklearn.svm.SVC",
                "space": SPACE,
                "cv": 3,
            },
            # The same search with an SVC that hangs in its first fit on the victim node.
            "svc_lost": {
                "dataset": "iris",
                "estimator": "helpers.node_faults.HangOnceOnNode",
                "space": SPACE,
                "cv": 3,
            },
        },
    },
    "evolve": {
        "workers": None,
        "problems": {
            "cma": {
                "algorithm": "cma-es",
                "objective": "rastrigin",
                "dimensions": 6,
                "lambda": 24,
                "generations": 10,
                "chunksize": 6,  # ship chunks to the workers however cheap Rastrigin is
            },
            "iris_features": {
                "algorithm": "nsga2",
                "objective": "feature_selection",
                "model": "svc_iris",
                "population": 8,
                "generations": 2,
                "chunksize": 2,
            },
        },
    },
    "report": {"scaling_in_default": False},
}
SPREAD = {"nodes": len(NODES), "tasks": len(NODES)}  # one task per node
SET_RESOURCES = {rule: SPREAD for rule in ("search", "evolve", "evolve_pareto")}
VICTIM = NODES[-1]
TIMINGS = ["mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"]
STEP_FIELDS = ["JobID", "JobName", "State", "ExitCode", "NodeList", "NTasks"]
# Bounds for the failure case only: each is far above what the event takes.
HANG_SECONDS = 600
RUN_SECONDS = 1200


def job_environment(**variables) -> dict[str, str]:
    """PYTHONPATH with tests/ (engines and the rule import node_faults), plus `variables`."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, **variables}


def slurm_job_of(pid: int) -> str | None:
    """The Slurm job a process belongs to (SLURM_JOB_ID in its environment)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # exited meanwhile
        return None
    for entry in environ:
        if entry.startswith(b"SLURM_JOB_ID="):
            return entry.partition(b"=")[2].decode()
    return None


def engine_processes(node: str, job: str) -> list[int]:
    """PIDs of Slurm job `job`'s ipyparallel engines on `node`."""
    found = []
    for pid in node_pids(node):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"evosweep.engines.engine" in cmdline and slurm_job_of(pid) == job:
            found.append(pid)
    return found


def wait_for_file(path: Path, while_running, timeout: float) -> bool:
    """True once `path` exists; False if `while_running()` turns false first (or the bound)."""
    wait_until(lambda: path.exists() or not while_running(), timeout, 0.2)
    return path.exists()


def kill_node_engines(node: str, marker: Path) -> list[int]:
    """SIGKILL the engines on `node` of the job whose fit hangs there (the PID in `marker`)."""
    hung = int(marker.read_text())
    assert hung in node_pids(node), f"the hung fit's engine {hung} is not on {node}"
    job = slurm_job_of(hung)
    victims = engine_processes(node, job)
    assert hung in victims, (hung, job, victims)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    return victims


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The run through the profile (losing VICTIM's engines mid-fit in search svc_lost) and,
    meanwhile, a local run of the same config (no fit hangs there: no node is named VICTIM)."""
    root = tmp_path_factory.mktemp("multinode")
    slurm_dir, local_dir = root / "slurm", root / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    marker = root / "hung-engine.pid"
    killed: list[int] = []
    with pytest.MonkeyPatch.context() as patch:
        hang = {NODE_VARIABLE: VICTIM, MARKER_VARIABLE: str(marker)}
        for name, value in job_environment(**hang).items():
            patch.setenv(name, value)
        with ThreadPoolExecutor(max_workers=2) as pool:
            on_slurm = pool.submit(
                run_on_slurm,
                slurm_dir,
                CONFIG,
                "all",
                timeout=RUN_SECONDS,
                set_resources=SET_RESOURCES,
            )
            local = pool.submit(snakemake, local_dir, CONFIG, "--cores", "2", "all")
            try:
                if wait_for_file(marker, lambda: not on_slurm.done(), HANG_SECONDS):
                    killed = kill_node_engines(VICTIM, marker)
            finally:
                # Whatever failed above, never leave a fit hanging in a Slurm job.
                if marker.exists() and not killed:
                    with contextlib.suppress(OSError, ValueError):
                        os.kill(int(marker.read_text()), signal.SIGKILL)
            output, run_id = on_slurm.result()
            local.result()
    return {
        "slurm": slurm_dir,
        "local": local_dir,
        "run_id": run_id,
        "output": output,
        "killed": killed,
    }


def rule_job(runs, rule: str, wildcard: str) -> dict[str, str]:
    """The run's only Slurm job of `rule` for `wildcard`: a retry would hide a failure."""
    comment = f"rule_{rule}_wildcards_{wildcard}"
    jobs = [job for job in jobs_by_name(runs["run_id"]) if job["Comment"] == comment]
    assert len(jobs) == 1, f"{comment}: {jobs}\n{runs['output'][-3000:]}"
    assert jobs[0]["State"] == "COMPLETED", jobs[0]
    return jobs[0]


def job_steps(job_id: str, fields=STEP_FIELDS) -> dict[str, dict[str, str]]:
    return {step["JobID"]: step for step in sacct(job_id, fields=fields)}


def batch_node(job_id: str, steps: dict) -> str:
    return steps[f"{job_id}.batch"]["NodeList"]


def engine_steps(job_id: str, steps: dict) -> list[dict[str, str]]:
    """The srun steps of a search job (numbered steps: the engines)."""
    return [step for key, step in steps.items() if re.fullmatch(rf"{job_id}\.\d+", key)]


def test_engines_ran_on_every_node_and_met_the_controller_on_the_batch_node(runs):
    job = rule_job(runs, "search", "svc_iris")["JobID"]
    steps = job_steps(job)
    engines = engine_steps(job, steps)
    assert len(engines) == 1, steps  # one step, one task per node
    (step,) = engines
    assert step["NTasks"] == str(len(NODES)), step
    assert sorted(hostnames(step["NodeList"])) == sorted(NODES), step
    assert (step["State"], step["ExitCode"]) == ("COMPLETED", "0:0"), step
    assert steps[f"{job}.batch"]["State"] == "COMPLETED", steps
    log = (runs["slurm"] / "logs" / "search" / "svc_iris.log").read_text()
    address = node_address(batch_node(job, steps))
    # Every engine, on every node, registered with the controller there before any fit.
    assert f"{len(NODES)} engine(s) ready" in log, log
    assert f"(srun, controller {address})" in log, log


EVOLUTIONS = [("evolve", "cma"), ("evolve_pareto", "iris_features")]


@pytest.mark.parametrize("rule, problem", EVOLUTIONS)
def test_scoop_workers_ran_on_the_other_nodes_and_met_the_broker_on_the_batch_node(
    runs, rule, problem
):
    job = rule_job(runs, rule, problem)["JobID"]
    # SubmitLine last (sacct() splits at most that often); only where no step's command spans
    # lines, as the engines' `python -c` program does.
    steps = job_steps(job, [*STEP_FIELDS, "SubmitLine"])
    batch = batch_node(job, steps)
    workers = [step for step in steps.values() if step["JobName"].startswith("scoop-")]
    # The origin runs in the batch step; the other nodes' workers each in a step of their own.
    worker_nodes = {node for step in workers for node in hostnames(step["NodeList"])}
    assert worker_nodes == set(NODES) - {batch}, steps
    best = json.loads((runs["slurm"] / "results" / "evolve" / problem / "best.json").read_text())
    assert best["workers"] == len(NODES)
    assert best["worker_tasks"] > 0, best  # chunks went out to the workers
    # Each worker step was told the broker's address: the batch node's.
    for step in workers:
        told = re.search(r"--brokerHostname[= ]\"?([^\s\"]+)", step["SubmitLine"])
        assert told, step
        assert socket.gethostbyname(told.group(1)) == node_address(batch), step


@pytest.mark.parametrize("rule, problem", EVOLUTIONS)
def test_scoop_worker_steps_ended_completed(runs, rule, problem):
    """Each worker leaves when the origin is done; a step ended by a signal shows CANCELLED."""
    job = rule_job(runs, rule, problem)["JobID"]
    steps = job_steps(job)
    assert any(step["JobName"].startswith("scoop-") for step in steps.values()), steps
    states = {key: (step["State"], step["ExitCode"]) for key, step in steps.items()}
    assert set(states.values()) == {("COMPLETED", "0:0")}, states


def test_lost_node_search_resubmitted_its_batch_and_finished_in_one_job(runs):
    assert runs["killed"], "no fit hung on the victim node, so no engine was killed"
    job = rule_job(runs, "search", "svc_lost")["JobID"]
    steps = job_steps(job)
    assert batch_node(job, steps) != VICTIM, steps  # the controller's node was not the lost one
    (step,) = engine_steps(job, steps)
    assert VICTIM in hostnames(step["NodeList"]), step
    log = (runs["slurm"] / "logs" / "search" / "svc_lost.log").read_text()
    assert f"{len(NODES)} engine(s) ready" in log, log
    assert "resubmitting the batch" in log, log


@pytest.mark.parametrize("model", ["svc_iris", "svc_lost"])
def test_search_results_equal_the_local_run(runs, model):
    out = Path("results") / "search" / model
    slurm, local = runs["slurm"] / out, runs["local"] / out
    pd.testing.assert_frame_equal(
        pd.read_csv(slurm / "cv_results.csv").drop(columns=TIMINGS),
        pd.read_csv(local / "cv_results.csv").drop(columns=TIMINGS),
    )
    assert json.loads((slurm / "best_params.json").read_text()) == json.loads(
        (local / "best_params.json").read_text()
    )


@pytest.mark.parametrize("problem", ["cma", "iris_features"])
def test_evolution_results_equal_the_local_run(runs, problem):
    out = Path("results") / "evolve" / problem
    slurm, local = comparable(runs["slurm"] / out), comparable(runs["local"] / out)
    assert slurm == local
    if problem == "iris_features":
        assert "pareto" in slurm
