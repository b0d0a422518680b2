"""The data stage on the local Slurm cluster through `snakemake --profile profiles/slurm`.

Checks from sacct that rule prepare_data ran as its own Slurm job with the
partition, account, CPUs, memory and time limit profiles/slurm/config.yaml gives it.
"""

from __future__ import annotations

import json

import pytest

from helpers.slurm_cluster import expected_sacct, jobs_by_name, run_on_slurm, sacct, wait_for_sacct

pytestmark = pytest.mark.slurm

CONFIG = {
    "seed": 1,
    "datasets": {"iris": {"source": "sklearn:iris", "test_size": 0.25}},
}
TARGET = "results/data/iris/summary.json"


@pytest.fixture(scope="module")
def slurm_data_run(slurm_cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-data")
    output, run_id = run_on_slurm(workdir, CONFIG, TARGET, timeout=600)
    return workdir, run_id, output


def test_data_outputs_exist(slurm_data_run):
    workdir, _, _ = slurm_data_run
    data = workdir / "results" / "data" / "iris"
    for name in ("train.parquet", "test.parquet", "summary.json"):
        assert (data / name).stat().st_size > 0, name
    json.loads((data / "summary.json").read_text())


def test_prepare_data_ran_as_its_own_slurm_job(slurm_data_run):
    _, run_id, output = slurm_data_run
    # Every job of this run is named after the run ID; prepare_data's carries its rule
    # (and wildcards) in the comment.
    jobs = wait_for_sacct(
        lambda rows: any(r["Comment"].startswith("rule_prepare_data") for r in rows),
        query=jobs_by_name,
        name=run_id,
    )
    prepare = [r for r in jobs if r["Comment"] == "rule_prepare_data_wildcards_iris"]
    assert len(prepare) == 1, f"sacct jobs of run {run_id}: {jobs}\n{output[-3000:]}"
    job = prepare[0]
    assert job["State"] == "COMPLETED", job
    expected = expected_sacct("prepare_data")
    assert {k: job[k] for k in expected} == expected, job

    # The batch step ran exactly one task (the jobstep wraps the rule in `srun -n1`).
    steps = sacct(job["JobID"])
    batch = [s for s in steps if s["JobID"] == f"{job['JobID']}.batch"]
    assert batch and batch[0]["State"] == "COMPLETED", steps
