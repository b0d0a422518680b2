"""A wide sweep on the local Slurm cluster: tiny models over 5 datasets through profiles/slurm.
One Slurm job per search and per dataset, none for the tables (localrules), and the next dry
run has nothing to do.

CI runs 2 models per dataset: every search job pays a fixed start (Snakemake in the job,
imports, engines) of about a minute and a half on this 2-core host, so the issue's 100 models
(EVOSWEEP_MANY_MODELS_PER_DATASET=20) take about 36 minutes here; the rule checked is the same."""

from __future__ import annotations

import os
from collections import Counter

import pandas as pd
import pytest

from helpers.many_models import DATASETS, many_models_config
from helpers.slurm_cluster import REPO, jobs_by_name, run_on_slurm, wait_for_sacct
from helpers.workflow_runner import nothing_to_do, planned_jobs, snakemake

pytestmark = pytest.mark.slurm

MODELS_PER_DATASET = int(os.environ.get("EVOSWEEP_MANY_MODELS_PER_DATASET", "2"))
CONFIG = many_models_config(MODELS_PER_DATASET)
N_MODELS = MODELS_PER_DATASET * len(DATASETS)
# Every search and every dataset is a job of its own; the leaderboard and the resources
# table run on the login node.
EXPECTED_JOBS = {"search": N_MODELS, "prepare_data": len(DATASETS)}


def rule_of(comment: str) -> str:
    """The rule the slurm plugin named in a job's comment (rule_<rule>[_wildcards_<values>])."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


@pytest.fixture(scope="module")
def many_models_run(slurm_cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-many-models")
    # The bound only guards against a hang: every search job pays its own start (Snakemake,
    # imports, engines), which on a 2-core host is most of the run.
    output, run_id = run_on_slurm(workdir, CONFIG, "all", timeout=3600)
    return workdir, run_id, output


def test_every_model_is_on_the_leaderboard(many_models_run):
    workdir, _, output = many_models_run
    leaderboard = pd.read_csv(workdir / "results" / "leaderboard.csv")
    assert len(leaderboard) == N_MODELS, output[-3000:]
    for model in CONFIG["search"]["models"]:
        assert (workdir / "results" / "search" / model / "cv_results.csv").stat().st_size > 0


def test_one_slurm_job_per_search_and_per_dataset(many_models_run):
    _, run_id, output = many_models_run
    expected_total = sum(EXPECTED_JOBS.values())
    jobs = wait_for_sacct(lambda rows: len(rows) >= expected_total, query=jobs_by_name, name=run_id)
    assert Counter(rule_of(job["Comment"]) for job in jobs) == EXPECTED_JOBS, output[-3000:]
    assert len(jobs) <= N_MODELS + len(DATASETS) + 3  # the budget: a few more at most
    assert all(job["State"] == "COMPLETED" for job in jobs), [
        job for job in jobs if job["State"] != "COMPLETED"
    ]


def test_next_dry_run_has_nothing_to_do(many_models_run):
    workdir, _, _ = many_models_run
    result = snakemake(workdir, CONFIG, "--profile", str(REPO / "profiles" / "slurm"), "all", "-n")
    assert nothing_to_do(result) and not planned_jobs(result), result.stdout[-3000:]
