"""The whole pipeline on the multi-node Slurm test cluster through `snakemake --profile slurm`.

A small config covers every stage: data, a grid and an evolutionary search, CMA-ES, NSGA-II
feature selection, the leaderboard, the resources table and the scaling study at 1 and 2
workers. Every parallel job (the scaling jobs too) spreads its tasks over 2 nodes;
every job ends COMPLETED at its first attempt, and the next dry run has nothing to do.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from helpers.configs import iris_features, iris_search, rastrigin, svc_iris
from helpers.slurm_cluster import hostnames, jobs_by_name, run_on_slurm, sacct
from helpers.workflow_runner import nothing_to_do, planned_jobs, snakemake

pytestmark = pytest.mark.slurm

CONFIG = {
    **iris_search(  # engines None: the job's tasks
        engines=None,
        seed=7,
        svc_iris=svc_iris(),
        svc_evo=svc_iris(strategy="evolutionary", evolution={"population": 6, "generations": 2}),
    ),
    "evolve": {
        "workers": None,
        "problems": {"rastrigin": rastrigin(), "iris_features": iris_features()},
    },
    "report": {
        "scaling": [1, 2],
        "scaling_repeats": 1,
        "scaling_model": "svc_iris",
        "scaling_problem": "iris_features",
    },
}
TWO_NODES = {"nodes": 2, "tasks": 2}
# The scaling jobs ask for one node per worker of the largest count themselves.
SET_RESOURCES = {
    rule: TWO_NODES for rule in ("search", "search_evolutionary", "evolve", "evolve_pareto")
}
SLURM_JOBS = {
    "prepare_data[dataset=iris]",
    "search[model=svc_iris]",
    "search_evolutionary[model=svc_evo]",
    "evolve[problem=rastrigin]",
    "evolve_pareto[problem=iris_features]",
    "scaling_search",
    "scaling_evolve",
}
LOCAL_JOBS = {"leaderboard", "resources_table", "scaling_table"}
# Jobs whose workers (engines or SCOOP workers) are spread over 2 nodes.
SPREAD_JOBS = SLURM_JOBS - {"prepare_data[dataset=iris]"}
STEP_FIELDS = ["JobID", "JobName", "State", "ExitCode", "NodeList"]


def job_label(comment: str) -> str:
    """The plugin's comment `rule_<rule>_wildcards_<value>` as planned_jobs names the job."""
    rule, _, value = comment.removeprefix("rule_").partition("_wildcards_")
    wildcard = {
        "prepare_data": "dataset",
        "search": "model",
        "search_evolutionary": "model",
        "evolve": "problem",
        "evolve_pareto": "problem",
    }.get(rule)
    return f"{rule}[{wildcard}={value}]" if wildcard and value else rule


@pytest.fixture(scope="module")
def pipeline(slurm_cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-pipeline")
    planned = planned_jobs(snakemake(workdir, CONFIG, "-n", "all"))
    output, run_id = run_on_slurm(workdir, CONFIG, "all", timeout=1500, set_resources=SET_RESOURCES)
    jobs = {job_label(job["Comment"]): job for job in jobs_by_name(run_id)}
    return workdir, planned, output, jobs, run_id


def test_every_stage_ran_once_as_planned(pipeline):
    workdir, planned, output, jobs, run_id = pipeline
    assert planned == SLURM_JOBS | LOCAL_JOBS, planned
    # One Slurm job per planned job (a retry would hide a failure), none for the localrules.
    attempts = [job_label(job["Comment"]) for job in jobs_by_name(run_id)]
    assert sorted(attempts) == sorted(SLURM_JOBS), f"{attempts}\n{output[-3000:]}"
    assert all(job["State"] == "COMPLETED" for job in jobs.values()), jobs
    results = workdir / "results"
    leaderboard = pd.read_csv(results / "leaderboard.csv")
    assert set(leaderboard["model"]) == {"svc_iris", "svc_evo"}, leaderboard
    scaling = pd.read_csv(results / "scaling" / "scaling.csv")
    assert sorted(zip(scaling["stage"], scaling["workers"], strict=True)) == [
        ("evolve", 1),
        ("evolve", 2),
        ("search", 1),
        ("search", 2),
    ]
    assert (results / "resources" / "resources.csv").stat().st_size > 0
    assert (results / "evolve" / "iris_features" / "pareto.csv").stat().st_size > 0


@pytest.mark.parametrize("label", sorted(SPREAD_JOBS))
def test_workers_spread_over_two_nodes_and_their_steps_completed(pipeline, label):
    _, _, _, jobs, _ = pipeline
    job = jobs[label]["JobID"]
    steps = {step["JobID"]: step for step in sacct(job, fields=STEP_FIELDS)}
    assert all(step["State"] == "COMPLETED" for step in steps.values()), steps
    launched = [step for key, step in steps.items() if re.fullmatch(rf"{job}\.\d+", key)]
    assert launched, f"{label}: no srun step: {steps}"
    # The batch step holds the controller or the SCOOP origin; the srun steps the engines
    # (all nodes) or the other node's SCOOP workers.
    nodes = {steps[f"{job}.batch"]["NodeList"]}
    for step in launched:
        nodes.update(hostnames(step["NodeList"]))
    assert len(nodes) == 2, f"{label}: {steps}"


def test_next_dry_run_has_nothing_to_do(pipeline):
    workdir = pipeline[0]
    dry = snakemake(workdir, CONFIG, "--profile", str(workdir / ".slurm-profile"), "-n", "all")
    assert nothing_to_do(dry), planned_jobs(dry)
