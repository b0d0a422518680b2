"""The scaling target through `snakemake --profile profiles/slurm` on the local Slurm cluster:
one job per worker count, with that many tasks on as many nodes, the multi-worker ones
launching srun steps."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from slurm_cluster import SACCT_FIELDS, jobs_by_name, run_on_slurm, sacct

pytestmark = pytest.mark.slurm

CONFIG = {
    "seed": 1,
    "datasets": {"iris": {"source": "sklearn:iris", "test_size": 0.3}},
    "search": {
        "models": {
            "svc_iris": {
                "dataset": "iris",
                "estimator": "sklearn.svm.SVC",
                "space": {"C": {"logspace": [-1, 1, 3]}, "gamma": {"logspace": [-2, 0, 2]}},
                "cv": 3,
            }
        }
    },
    "evolve": {
        "problems": {
            "rastrigin": {
                "algorithm": "cma-es",
                "objective": "rastrigin",
                "dimensions": 5,
                "lambda": 10,
                "generations": 5,
            }
        }
    },
    "report": {"scaling": [1, 2]},
}


def expand_nodes(job_id: str) -> list[str]:
    [job] = sacct(job_id, fields=["JobID", "NodeList"], allocations=True)
    names = subprocess.run(
        ["scontrol", "show", "hostnames", job["NodeList"]], capture_output=True, text=True
    )
    return names.stdout.split()


def test_scaling_target_runs_one_job_per_worker_count(slurm_cluster, tmp_path):
    _, run_id = run_on_slurm(tmp_path, CONFIG, "scaling", timeout=600)
    table = pd.read_csv(tmp_path / "results" / "scaling" / "scaling.csv")
    assert sorted(zip(table["stage"], table["workers"], strict=True)) == [
        ("evolve", 1),
        ("evolve", 2),
        ("search", 1),
        ("search", 2),
    ]
    jobs = {job["Comment"]: job for job in jobs_by_name(run_id)}
    for stage in ("search", "evolve"):
        for workers in (1, 2):
            job = jobs[f"rule_scaling_{stage}_wildcards_{workers}"]
            assert job["State"] == "COMPLETED", job
            assert int(job["AllocCPUS"]) == workers, job
            steps = [
                s
                for s in sacct(job["JobID"], fields=[*SACCT_FIELDS, "NodeList"])
                if s["JobID"] != job["JobID"]
            ]
            assert steps and all(s["State"] == "COMPLETED" for s in steps), steps
            if workers == 2:  # engines / the other node's SCOOP worker as srun steps
                launched = [s for s in steps if s["JobName"] != "batch"]
                assert launched, steps
                assert len(expand_nodes(job["JobID"])) == 2, job  # one node per worker
    assert "rule_scaling_table" not in jobs  # a localrule: it runs on the login node
