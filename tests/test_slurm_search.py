"""The search rule on the local Slurm cluster: engines as an srun step inside the allocation,
one engine per task, here on 2 nodes."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from helpers.configs import iris_search, svc_iris
from helpers.slurm_cluster import REPO, hostnames, jobs_by_name, run_on_slurm, sacct, wait_for_sacct
from helpers.workflow_runner import snakemake

pytestmark = pytest.mark.slurm

# engines None: the job's tasks on Slurm (2 in profiles/slurm), threads locally
IRIS_GRID = iris_search(
    engines=None, svc_iris=svc_iris(space={"C": {"logspace": [-1, 1, 3]}, "gamma": [0.01, 0.1]})
)
# A model-based strategy (its batches follow the engine count) over preprocessing steps fitted
# inside every fold, on a raw table with text columns and gaps.
PENGUINS_TPE = {
    "seed": 42,
    "datasets": {
        "penguins": {
            "source": f"csv:{REPO / 'tests' / 'data' / 'penguins.csv'}",
            "target": "species",
        }
    },
    "search": {
        "engines": None,
        "models": {
            "svc_iris": {  # the name the test reads results under
                "dataset": "penguins",
                "estimator": "sklearn.svm.SVC",
                "strategy": "tpe",
                "n_iter": 4,
                "cv": 3,
                "preprocess": {"impute": "median", "scale": "standard", "categorical": "onehot"},
                "space": {
                    "C": {"logspace": [-1, 2, 4]},
                    "preprocess.scale": ["standard", "robust"],
                },
            }
        },
    },
}
TARGET = "results/search/svc_iris/summary.json"
# One task per node, so the engines reach the controller across the cluster network.
SET_RESOURCES = {"search": {"nodes": 2, "tasks": 2}}
TIMINGS = ["mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"]


@pytest.mark.parametrize("config", [IRIS_GRID, PENGUINS_TPE], ids=["grid", "tpe-preprocess"])
def test_search_on_slurm_equals_local(slurm_cluster, tmp_path, config):
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    output, run_id = run_on_slurm(slurm_dir, config, TARGET, set_resources=SET_RESOURCES)

    def is_search(row):  # not rule_search_evolutionary
        return row["Comment"] == "rule_search" or row["Comment"].startswith(
            "rule_search_wildcards_"
        )

    jobs = wait_for_sacct(
        lambda rows: any(is_search(r) for r in rows),
        query=jobs_by_name,
        name=run_id,
    )
    search_jobs = [r for r in jobs if is_search(r)]
    assert len(search_jobs) == 1, jobs  # one attempt: a retry (profile retries: 1) hides a failure
    job = search_jobs[0]
    assert job["State"] == "COMPLETED", job
    fields = ["JobID", "JobName", "State", "ExitCode", "NTasks", "NodeList"]
    steps = sacct(job["JobID"], fields=fields)
    batch = [s for s in steps if s["JobID"] == f"{job['JobID']}.batch"]
    assert [(s["State"], s["ExitCode"]) for s in batch] == [("COMPLETED", "0:0")], steps
    # Numbered steps are srun steps; the engines' step runs one task per node and must end
    # COMPLETED (exit 0 after the shutdown request), not FAILED or CANCELLED.
    engine_steps = [s for s in steps if re.fullmatch(rf"{job['JobID']}\.\d+", s["JobID"])]
    assert engine_steps, steps
    assert all(s["State"] == "COMPLETED" and s["ExitCode"] == "0:0" for s in engine_steps), steps
    assert any(s["NTasks"] == "2" for s in engine_steps), engine_steps
    assert any(len(hostnames(s["NodeList"])) == 2 for s in engine_steps), engine_steps
    log = (slurm_dir / "logs" / "search" / "svc_iris.log").read_text()
    assert "2 engine(s) ready" in log and "(srun," in log
    # the engines and srun exited by themselves after the shutdown request (engines.cluster._stop)
    assert "exited with code" not in log and "did not exit" not in log, log

    snakemake(local_dir, dict(config, search=dict(config["search"], engines=2)), "-c2", TARGET)
    model = "results/search/svc_iris"
    pd.testing.assert_frame_equal(
        pd.read_csv(slurm_dir / model / "cv_results.csv").drop(columns=TIMINGS),
        pd.read_csv(local_dir / model / "cv_results.csv").drop(columns=TIMINGS),
    )
    assert (slurm_dir / model / "best_params.json").read_text() == (
        local_dir / model / "best_params.json"
    ).read_text()


# The other engine strategies over 2 nodes. cmaes asks as many candidates at once as there are
# engines, so its run equals a local run on as many engines. asha's promotions follow the order
# its results arrive in, which differs between runs on 2 engines; each result (a candidate on
# its rung's subsample) does not, and every candidate starts on the bottom rung.
IRIS_CMAES_ASHA = iris_search(
    engines=None,
    seed=3,
    svc_cmaes=svc_iris(strategy="cmaes", n_iter=5),
    svc_asha=svc_iris(strategy="asha", n_iter=6),
)


def test_cmaes_and_asha_on_slurm_equal_local(slurm_cluster, tmp_path):
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    target = "results/leaderboard.csv"
    run_on_slurm(slurm_dir, IRIS_CMAES_ASHA, target, set_resources=SET_RESOURCES)
    for model in ("svc_cmaes", "svc_asha"):
        log = (slurm_dir / "logs" / "search" / f"{model}.log").read_text()
        assert "2 engine(s) ready" in log and "(srun," in log, log
    local = dict(IRIS_CMAES_ASHA, search=dict(IRIS_CMAES_ASHA["search"], engines=2))
    snakemake(local_dir, local, "-c2", target)

    def cv_results(root, model):
        return pd.read_csv(root / "results/search" / model / "cv_results.csv").drop(columns=TIMINGS)

    pd.testing.assert_frame_equal(
        cv_results(slurm_dir, "svc_cmaes"), cv_results(local_dir, "svc_cmaes")
    )
    key = ["candidate", "iter"]
    on_slurm = cv_results(slurm_dir, "svc_asha").set_index(key)
    on_local = cv_results(local_dir, "svc_asha").set_index(key)
    assert set(on_slurm.xs(0, level="iter").index) == set(range(6))
    both = on_slurm.index.intersection(on_local.index)
    assert len(both) >= 6
    columns = ["n_resources", "mean_test_score", "std_test_score"]
    pd.testing.assert_frame_equal(
        on_slurm.loc[both, columns].sort_index(), on_local.loc[both, columns].sort_index()
    )
