"""The whole workflow on a small config: the HTML report in a real browser, and a tested
guarantee that each kind of edit reruns exactly the jobs it made stale."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from helpers.configs import iris_features, rastrigin, svc_iris
from helpers.report_browser import figures_shown
from helpers.workflow_runner import copy_workflow, nothing_to_do, planned_jobs, snakemake

SMALL = {
    "seed": 3,
    "datasets": {
        "iris": {"source": "sklearn:iris", "test_size": 0.3},
        "wine": {"source": "sklearn:wine", "test_size": 0.3},
        "blobs": {"source": "blobs", "n_samples": 300, "centers": 3},
    },
    "search": {
        "engines": 2,
        "models": {
            "svc_iris": svc_iris(),
            "forest_wine": {
                "dataset": "wine",
                "estimator": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 10},
                "strategy": "random",
                "n_iter": 3,
                "space": {"max_depth": [2, 4, 8]},
                "cv": 3,
            },
            "kmeans_blobs": {
                "dataset": "blobs",
                "estimator": "sklearn.cluster.KMeans",
                "params": {"n_init": 2},
                "space": {"n_clusters": {"range": [2, 5, 1]}},
                "cv": 2,
                "scoring": "silhouette",
            },
            "svc_evo": svc_iris(
                strategy="evolutionary", evolution={"population": 6, "generations": 2}
            ),
        },
    },
    "evolve": {
        "workers": 2,
        "problems": {
            "rastrigin": rastrigin(),
            "iris_features": iris_features(),
        },
    },
    "report": {"scaling": [1, 2], "scaling_model": "svc_iris", "scaling_problem": "rastrigin"},
}
ALL_SEARCHES = {"search[model=svc_iris]", "search[model=forest_wine]", "search[model=kmeans_blobs]"}
SCALING_SEARCH = {"scaling_search", "scaling_table"}
SCALING_EVOLVE = {"scaling_evolve", "scaling_table"}


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """A private copy of the workflow (so a test may edit a script), run once to completion."""
    root = copy_workflow(tmp_path_factory.mktemp("pipeline"))
    run(root, SMALL)
    return root


def run(root: Path, config: dict, *args: str, check: bool = True):
    return snakemake(
        root, config, "-s", str(root / "Snakefile"), "--cores", "2", *args, check=check
    )


def test_report_opens_in_a_browser_with_every_figure(workflow, page):
    run(workflow, SMALL, "--report", "results/report.html")
    shown = figures_shown(page, workflow / "results" / "report.html")
    assert shown.console_errors == [], shown.console_errors
    for category in ("Data", "Search", "Evolution", "Leaderboard", "Scaling", "Resources"):
        assert category in shown.categories, shown.categories
    failed = {path: result for path, result in shown.results.items() if not result["ok"]}
    assert failed == {}, failed
    images = [r for r in shown.results.values() if r["kind"] == "image"]
    assert all(image["natural_width"] > 0 for image in images)
    # heatmaps, cluster plots, convergence, Pareto fronts, speedup and resources at least
    assert len(images) >= 8, sorted(shown.results)


EDITS = []


def edit(description):
    def register(function):
        EDITS.append(pytest.param(function, id=description))
        return function

    return register


@edit("one model's space")
def edit_model_space(config, root):
    config["search"]["models"]["svc_iris"]["space"]["C"] = {"logspace": [-1, 1, 4]}
    return {
        "search[model=svc_iris]",
        "leaderboard",
        "evolve_pareto[problem=iris_features]",
        "resources_table",
    } | SCALING_SEARCH


@edit("one problem's generations")
def edit_problem_generations(config, root):
    config["evolve"]["problems"]["rastrigin"]["generations"] = 6
    return {"evolve[problem=rastrigin]", "resources_table"} | SCALING_EVOLVE


@edit("a dataset's test_size")
def edit_test_size(config, root):
    config["datasets"]["wine"]["test_size"] = 0.25
    return {
        "prepare_data[dataset=wine]",
        "search[model=forest_wine]",
        "leaderboard",
        "resources_table",
    }


@edit("the report options")
def edit_report_options(config, root):
    config["report"]["dpi"] = 90
    return {"resources_table", "scaling_table"}


@edit("the scaling study's repeats")
def edit_scaling_repeats(config, root):
    config["report"]["scaling_repeats"] = 1  # the later edits then time each count once
    return SCALING_SEARCH | SCALING_EVOLVE


@edit("a script's code")
def edit_script(config, root):
    with open(root / "scripts" / "search.py", "a") as handle:
        handle.write("# an edit to the search adapter\n")
    # every strategy's search runs through this adapter, the evolutionary one included
    return ALL_SEARCHES | {
        "search_evolutionary[model=svc_evo]",
        "leaderboard",
        "evolve_pareto[problem=iris_features]",
        "resources_table",
    }


@edit("seed")
def edit_seed(config, root):
    config["seed"] = 4
    return (
        {f"prepare_data[dataset={name}]" for name in ("iris", "wine", "blobs")}
        | ALL_SEARCHES
        | {
            "search_evolutionary[model=svc_evo]",
            "leaderboard",
            "evolve[problem=rastrigin]",
            "evolve_pareto[problem=iris_features]",
            "resources_table",
        }
        | SCALING_SEARCH
        | SCALING_EVOLVE
    )


@pytest.fixture(scope="module")
def current_config():
    """Edits accumulate: each one starts from the state the previous one left (no reverts)."""
    return copy.deepcopy(SMALL)


@pytest.mark.parametrize("apply_edit", EDITS)
def test_an_edit_reruns_exactly_what_it_made_stale(workflow, current_config, apply_edit):
    assert nothing_to_do(run(workflow, current_config, "-n"))
    expected = apply_edit(current_config, workflow)
    planned = planned_jobs(run(workflow, current_config, "-n"))
    assert planned == expected, f"extra: {planned - expected}, missing: {expected - planned}"
    run(workflow, current_config)
    assert nothing_to_do(run(workflow, current_config, "-n"))
