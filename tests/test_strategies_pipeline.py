"""The strategies tpe, cmaes and asha through the real workflow: their outputs, the leaderboard,
and an edit of one model reruns only that model's search."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from helpers.configs import iris_search, svc_iris
from helpers.workflow_runner import nothing_to_do, planned_jobs, snakemake

CV = 3
CONFIG = iris_search(
    engines=2,
    seed=5,
    svc_tpe=svc_iris(strategy="tpe", n_iter=4),
    svc_cmaes=svc_iris(strategy="cmaes", n_iter=4),
    # iris's 105 training samples: rungs of 18 and 54 samples (2 x cv x 3 classes, then x eta)
    svc_asha=svc_iris(strategy="asha", n_iter=6, eta=3),
)
TARGET = "results/leaderboard.csv"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("strategies")
    snakemake(root, CONFIG, "-c2", TARGET)
    return root


def outputs(workdir, model):
    folder = workdir / "results" / "search" / model
    assert (folder / "plots" / "history.png").stat().st_size > 0
    assert json.loads((folder / "best_params.json").read_text()).keys() <= {"C", "gamma"}
    summary = json.loads((folder / "summary.json").read_text())
    return pd.read_csv(folder / "cv_results.csv"), summary


@pytest.mark.parametrize("model", ["svc_tpe", "svc_cmaes"])
def test_model_based_outputs(workdir, model):
    cv_results, summary = outputs(workdir, model)
    assert sorted(cv_results["proposal_order"]) == list(range(4))
    assert summary["strategy"] == model.removeprefix("svc_")
    assert (summary["n_candidates"], summary["n_fits"]) == (4, 4 * CV)
    assert summary["best_score"] == cv_results["mean_test_score"].max()


def test_asha_outputs(workdir):
    cv_results, summary = outputs(workdir, "svc_asha")
    assert {"iter", "n_resources", "candidate"} <= set(cv_results.columns)
    assert set(cv_results["candidate"]) == set(range(6))
    first_rung = cv_results[cv_results["iter"] == 0]
    assert len(first_rung) == 6 and set(first_rung["n_resources"]) == {18}
    assert set(cv_results["n_resources"]) <= {18, 54}
    assert (summary["strategy"], summary["n_candidates"]) == ("asha", 6)
    assert summary["n_fits"] == len(cv_results) * CV


def test_leaderboard_has_every_model_with_candidates_and_fits(workdir):
    board = pd.read_csv(workdir / TARGET).set_index("model")
    assert set(board.index) == {"svc_tpe", "svc_cmaes", "svc_asha"}
    assert board.loc["svc_tpe", "n_candidates"] == 4
    assert board.loc["svc_cmaes", "n_fits"] == 4 * CV
    assert board.loc["svc_asha", "n_candidates"] == 6


def test_an_edit_of_one_model_reruns_only_its_search(workdir):
    assert nothing_to_do(snakemake(workdir, CONFIG, "-n", TARGET))
    edited = copy.deepcopy(CONFIG)
    edited["search"]["models"]["svc_cmaes"]["n_iter"] = 5
    planned = planned_jobs(snakemake(workdir, edited, "-n", TARGET))
    assert planned == {"search[model=svc_cmaes]", "leaderboard"}
    snakemake(workdir, edited, "-c2", TARGET)
    assert nothing_to_do(snakemake(workdir, edited, "-n", TARGET))
    summary = json.loads((workdir / "results/search/svc_cmaes/summary.json").read_text())
    assert (summary["n_candidates"], summary["n_fits"]) == (5, 5 * CV)
