"""Rule evolve on the local Slurm cluster: SCOOP workers on other nodes start as srun steps.

The job asks for 2 tasks (profiles/slurm/config.yaml), here spread over 2 nodes: the origin
runs on the batch node and the other node's worker starts as an srun step (scoop_launcher), so
sacct lists it as a step of the job. The result must equal a local run's.
"""

from __future__ import annotations

import json

import pytest

from helpers.evolve_results import RASTRIGIN, comparable
from helpers.slurm_cluster import jobs_by_name, run_on_slurm, wait_for_sacct
from helpers.workflow_runner import snakemake

pytestmark = pytest.mark.slurm

CONFIG = {
    "seed": 3,
    "datasets": {"iris": {"source": "sklearn:iris"}},
    "evolve": {"workers": None, "problems": {"cma": RASTRIGIN}},
}
TARGET = "results/evolve/cma/best.json"
# One task per node: a worker on the batch node itself starts as a plain local process.
SET_RESOURCES = {"evolve": {"nodes": 2, "tasks": 2}}


@pytest.fixture(scope="module")
def slurm_evolve_run(slurm_cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-evolve")
    output, run_id = run_on_slurm(workdir, CONFIG, TARGET, timeout=600, set_resources=SET_RESOURCES)
    return workdir, run_id, output


def test_scoop_workers_ran_as_completed_srun_steps(slurm_evolve_run):
    workdir, run_id, output = slurm_evolve_run
    jobs = wait_for_sacct(
        lambda rows: any(r["Comment"].startswith("rule_evolve") for r in rows),
        query=jobs_by_name,
        name=run_id,
    )
    evolve = [r for r in jobs if r["Comment"].startswith("rule_evolve")]
    assert len(evolve) == 1 and evolve[0]["State"] == "COMPLETED", jobs
    job_id = evolve[0]["JobID"]
    steps = wait_for_sacct(
        lambda rows: any(r["JobName"].startswith("scoop-") for r in rows),
        jobids=job_id,
        fields=["JobID", "JobName", "State", "NodeList"],
    )
    scoop_steps = [s for s in steps if s["JobName"].startswith("scoop-")]
    assert scoop_steps, f"no SCOOP srun step in {steps}\n{output[-3000:]}"
    batch = [s["NodeList"] for s in steps if s["JobID"] == f"{job_id}.batch"]
    assert batch and all(s["NodeList"] not in batch for s in scoop_steps), steps
    assert all(s["State"] == "COMPLETED" for s in steps if s["JobID"] != job_id), steps
    best = json.loads((workdir / TARGET).read_text())
    assert best["workers"] == 2  # SLURM_NTASKS of the job
    # Every generation's 24 genomes went out as 4 chunks of 6.
    assert best["worker_tasks"] == RASTRIGIN["generations"] * RASTRIGIN["lambda"] // 6
    log = (workdir / "logs" / "evolve" / "cma.log").read_text()
    assert "evosweep.evolve.scoop_launcher" in log and "--hosts" in log


def test_slurm_result_equals_local_run(slurm_evolve_run, tmp_path):
    workdir, _, _ = slurm_evolve_run
    snakemake(
        tmp_path, CONFIG | {"evolve": {"workers": 1, "problems": {"cma": RASTRIGIN}}}, "-c1", TARGET
    )
    out = "results/evolve/cma"
    assert comparable(workdir / out) == comparable(tmp_path / out)
