"""The scaling target through `snakemake --profile profiles/slurm` on the local Slurm cluster:
one job per stage, with as many tasks on as many nodes as the largest count; its 2-worker runs
launch srun steps that reach the other node."""

from __future__ import annotations

import pandas as pd
import pytest

from evosweep import scaling
from helpers.configs import iris_search, rastrigin
from helpers.slurm_cluster import SACCT_FIELDS, hostnames, jobs_by_name, run_on_slurm, sacct

pytestmark = pytest.mark.slurm

CONFIG = {
    **iris_search(engines=None, seed=1),
    "evolve": {"problems": {"rastrigin": rastrigin()}},
    "report": {"scaling": [1, 2]},
}


def expand_nodes(job_id: str) -> list[str]:
    [job] = sacct(job_id, fields=["JobID", "NodeList"], allocations=True)
    return hostnames(job["NodeList"])


def test_scaling_target_runs_one_job_per_stage_over_the_largest_count(slurm_cluster, tmp_path):
    _, run_id = run_on_slurm(tmp_path, CONFIG, "scaling", timeout=600)
    table = pd.read_csv(tmp_path / "results" / "scaling" / "scaling.csv")
    assert sorted(zip(table["stage"], table["workers"], table["repeats"], strict=True)) == [
        ("evolve", 1, 3),
        ("evolve", 2, 3),
        ("search", 1, 3),
        ("search", 2, 3),
    ]
    jobs = {job["Comment"]: job for job in jobs_by_name(run_id)}
    scaling_jobs = sorted(comment for comment in jobs if comment.startswith("rule_scaling"))
    assert scaling_jobs == ["rule_scaling_evolve", "rule_scaling_search"], jobs
    for stage in ("search", "evolve"):
        job = jobs[f"rule_scaling_{stage}"]
        assert job["State"] == "COMPLETED", job
        assert int(job["AllocCPUS"]) == 2, job
        assert len(expand_nodes(job["JobID"])) == 2, job  # one node per worker
        steps = [
            s
            for s in sacct(job["JobID"], fields=[*SACCT_FIELDS, "NodeList"])
            if s["JobID"] != job["JobID"]
        ]
        assert steps and all(s["State"] == "COMPLETED" for s in steps), steps
        # Engines / the other node's SCOOP worker as srun steps: the 2-worker runs reach the node
        # that does not hold the batch step.
        nodes = {s["NodeList"] for s in steps if s["JobName"] == "batch"}
        for step in steps:
            if step["JobName"] not in ("batch", "extern"):
                nodes.update(hostnames(step["NodeList"]))
        assert len(nodes) == 2, steps
    # The search's engine steps, one per timed run: 1 and 2 engines in alternating rounds.
    engine_steps = [
        s
        for s in sacct(
            jobs["rule_scaling_search"]["JobID"], fields=["JobID", "JobName", "AllocCPUS"]
        )
        if s["JobName"] not in ("batch", "extern") and "." in s["JobID"]
    ]
    engine_steps.sort(key=lambda s: int(s["JobID"].rsplit(".", 1)[1]))
    assert [int(s["AllocCPUS"]) for s in engine_steps] == scaling.rounds([1, 2], 3), engine_steps
    assert "rule_scaling_table" not in jobs  # a localrule: it runs on the login node
