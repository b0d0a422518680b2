"""64 engines and 32 SCOOP workers over the 16 nodes of the wide Slurm test cluster, through
`snakemake --profile` with `--set-resources`, each run's results equal to a local run's.

Runs only against the wide cluster (tests/slurm/wide.env: 16 nodes of 4 CPUs), with its
variables exported; the cluster fixture starts it. 64 engines load the whole machine, so
`make test` runs this file last, alone; by hand:

    set -a; . tests/slurm/wide.env; set +a
    .venv/bin/python -m pytest tests/test_slurm_wide.py -x -q
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from helpers.evolve_results import comparable
from helpers.slurm_cluster import NODES, hostnames, jobs_by_name, run_on_slurm, sacct
from helpers.workflow_runner import snakemake

WIDE_NODES = 16
RUN_COMMAND = (
    "`make test` runs it; or set -a; . tests/slurm/wide.env; set +a; "
    ".venv/bin/python -m pytest tests/test_slurm_wide.py"
)
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        len(NODES) < WIDE_NODES,
        reason=f"needs the {WIDE_NODES}-node Slurm test cluster's variables: {RUN_COMMAND}",
    ),
]

ENGINES = 64
WORKERS = 32
# 64 candidates x 3 folds: 192 fits, three per engine.
SEARCH_CONFIG = {
    "seed": 11,
    "datasets": {"iris": {"source": "sklearn:iris", "test_size": 0.3}},
    "search": {
        "engines": None,  # the job's tasks on Slurm
        "models": {
            "svc_wide": {
                "dataset": "iris",
                "estimator": "sklearn.svm.SVC",
                "space": {"C": {"logspace": [-2, 2, 8]}, "gamma": {"logspace": [-3, 1, 8]}},
                "cv": 3,
            }
        },
    },
}
# 64 genomes a generation in chunks of 2: 32 tasks, one for each worker.
EVOLVE_CONFIG = {
    "seed": 7,
    "datasets": {"iris": {"source": "sklearn:iris"}},
    "evolve": {
        "workers": None,  # the job's tasks on Slurm
        "problems": {
            "cma_wide": {
                "algorithm": "cma-es",
                "objective": "rastrigin",
                "dimensions": 6,
                "centroid": 5.0,
                "sigma": 5.0,
                "lambda": 64,
                "generations": 5,
                "chunksize": 2,
            }
        },
    },
}
SEARCH_TARGET = "results/search/svc_wide/summary.json"
EVOLVE_TARGET = "results/evolve/cma_wide/best.json"
TIMINGS = ["mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"]
STEP_FIELDS = ["JobID", "JobName", "State", "ExitCode", "NodeList", "NTasks"]


def only_job(run_id: str, output: str, comment: str) -> str:
    """The run's one Slurm job with `comment`, COMPLETED: a retry would hide a failure."""
    jobs = [job for job in jobs_by_name(run_id) if job["Comment"] == comment]
    assert len(jobs) == 1, f"{comment}: {jobs}\n{output[-3000:]}"
    assert jobs[0]["State"] == "COMPLETED", jobs[0]
    return jobs[0]["JobID"]


def steps_of(job: str) -> dict[str, dict[str, str]]:
    return {step["JobID"]: step for step in sacct(job, fields=STEP_FIELDS)}


def slurm_and_local_runs(root: Path, config, target, spread, local_config) -> dict:
    """`target` on the wide cluster with `spread` resources, and again locally with
    `local_config`; both working directories and the Slurm run's output and run ID."""
    slurm_dir, local_dir = root / "slurm", root / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    output, run_id = run_on_slurm(slurm_dir, config, target, set_resources=spread)
    snakemake(local_dir, local_config, "--cores", "2", target)
    return {"slurm": slurm_dir, "local": local_dir, "run_id": run_id, "output": output}


@pytest.fixture(scope="module")
def search_runs(slurm_cluster, tmp_path_factory):
    # The grid's results do not depend on the engine count: 2 local engines.
    local = dict(SEARCH_CONFIG, search=dict(SEARCH_CONFIG["search"], engines=2))
    spread = {"search": {"nodes": WIDE_NODES, "tasks": ENGINES}}
    root = tmp_path_factory.mktemp("wide-search")
    return slurm_and_local_runs(root, SEARCH_CONFIG, SEARCH_TARGET, spread, local)


def test_64_engines_over_16_nodes_registered_and_completed(search_runs):
    job = only_job(search_runs["run_id"], search_runs["output"], "rule_search_wildcards_svc_wide")
    steps = steps_of(job)
    engines = [step for key, step in steps.items() if re.fullmatch(rf"{job}\.\d+", key)]
    assert len(engines) == 1, steps  # one srun step; each node's task forks its engines
    (step,) = engines
    assert step["NTasks"] == str(len(NODES)), step
    assert sorted(hostnames(step["NodeList"])) == sorted(NODES), step
    assert (step["State"], step["ExitCode"]) == ("COMPLETED", "0:0"), step
    assert (steps[f"{job}.batch"]["State"], steps[f"{job}.batch"]["ExitCode"]) == (
        "COMPLETED",
        "0:0",
    ), steps
    log = (search_runs["slurm"] / "logs" / "search" / "svc_wide.log").read_text()
    assert f"{ENGINES} engine(s) ready" in log and "(srun," in log, log
    assert "exited with code" not in log and "did not exit" not in log, log
    summary = json.loads((search_runs["slurm"] / SEARCH_TARGET).read_text())
    assert summary["workers"] == ENGINES, summary


def test_64_engine_search_results_equal_the_local_run(search_runs):
    out = Path("results") / "search" / "svc_wide"
    slurm, local = search_runs["slurm"] / out, search_runs["local"] / out
    on_slurm = pd.read_csv(slurm / "cv_results.csv").drop(columns=TIMINGS)
    assert len(on_slurm) == 64, on_slurm
    pd.testing.assert_frame_equal(
        on_slurm, pd.read_csv(local / "cv_results.csv").drop(columns=TIMINGS)
    )
    assert json.loads((slurm / "best_params.json").read_text()) == json.loads(
        (local / "best_params.json").read_text()
    )


@pytest.fixture(scope="module")
def evolve_runs(slurm_cluster, tmp_path_factory):
    local = dict(EVOLVE_CONFIG, evolve=dict(EVOLVE_CONFIG["evolve"], workers=2))
    spread = {"evolve": {"nodes": WIDE_NODES, "tasks": WORKERS}}
    root = tmp_path_factory.mktemp("wide-evolve")
    return slurm_and_local_runs(root, EVOLVE_CONFIG, EVOLVE_TARGET, spread, local)


def test_32_scoop_workers_over_16_nodes_completed(evolve_runs):
    job = only_job(evolve_runs["run_id"], evolve_runs["output"], "rule_evolve_wildcards_cma_wide")
    steps = steps_of(job)
    batch = steps[f"{job}.batch"]["NodeList"]
    workers = [step for step in steps.values() if step["JobName"].startswith("scoop-")]
    # The batch node's workers run beside the origin; every other node's in srun steps.
    assert {node for step in workers for node in hostnames(step["NodeList"])} == set(NODES) - {
        batch
    }, steps
    states = {key: (step["State"], step["ExitCode"]) for key, step in steps.items()}
    assert set(states.values()) == {("COMPLETED", "0:0")}, states
    best = json.loads((evolve_runs["slurm"] / EVOLVE_TARGET).read_text())
    assert best["workers"] == WORKERS, best
    problem = EVOLVE_CONFIG["evolve"]["problems"]["cma_wide"]
    chunks = problem["lambda"] // problem["chunksize"]
    assert best["worker_tasks"] == problem["generations"] * chunks, best


def test_32_worker_evolution_equals_the_local_run(evolve_runs):
    out = Path("results") / "evolve" / "cma_wide"
    assert comparable(evolve_runs["slurm"] / out) == comparable(evolve_runs["local"] / out)
