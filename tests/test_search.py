"""Search stage with real engines: reproducibility, lost engines, config errors before fits."""

import json

import pandas as pd
import pytest

from evosweep import search
from evosweep.data import prepare, write
from evosweep.errors import ConfigError
from evosweep.models import Model
from helpers.configs import iris_search, svc_iris
from helpers.engine_faults import EngineKiller, hanging_on_victim
from helpers.workflow_runner import evosweep_error_lines, snakemake

SPEC = {
    "dataset": "digits",
    "estimator": "sklearn.svm.SVC",
    "params": {"kernel": "rbf"},
    "strategy": "grid",
    "space": {"C": {"logspace": [-1, 2, 3]}, "gamma": {"logspace": [-4, -2, 3]}},
    "cv": 3,
    "scoring": "accuracy",
}
DATA_SPEC = {"source": "sklearn:digits", "test_size": 0.3, "stratify": True}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    train, test, summary = prepare("digits", DATA_SPEC, 42)
    paths = [folder / n for n in ("train.parquet", "test.parquet", "summary.json")]
    write(train, test, summary, *paths)
    return paths[0], paths[1]


def _without_timings(path):
    frame = pd.read_csv(path)
    return frame.drop(columns=list(search.TIMING_COLUMNS))


def test_one_and_two_engines_give_identical_results(digits, tmp_path):
    train, test = digits
    for n in (1, 2):
        search.run(Model.from_config("svc", SPEC), 42, train, test, tmp_path / str(n), workers=n)
    pd.testing.assert_frame_equal(
        _without_timings(tmp_path / "1" / "cv_results.csv"),
        _without_timings(tmp_path / "2" / "cv_results.csv"),
    )
    assert (tmp_path / "1" / "best_params.json").read_text() == (
        tmp_path / "2" / "best_params.json"
    ).read_text()
    summary = json.loads((tmp_path / "2" / "summary.json").read_text())
    assert set(search.SUMMARY_KEYS) <= set(summary)
    assert summary["n_fits"] == 27 and summary["n_candidates"] == 9 and summary["workers"] == 2
    scores = json.loads((tmp_path / "2" / "test_scores.json").read_text())
    assert len(scores["confusion_matrix"]) == 10 and 0.9 < scores["accuracy"] <= 1
    assert (tmp_path / "2" / "plots" / "heatmap.png").stat().st_size > 0


def test_progress_counts_the_search_fits_only(digits):
    """The refit of a forest grows its trees through joblib too (n_jobs None: the engines'
    backend); they are not search fits."""
    from evosweep.data import read_split
    from evosweep.engines import engine_cluster

    features, labels = read_split(digits[0])
    spec = {
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "strategy": "grid",
        "space": {"n_estimators": [5, 8]},
        "cv": 3,
        "scoring": "accuracy",
    }
    forest_search = search.make_search(Model.from_config("forest", spec), 42)
    with engine_cluster(2, slurm=False) as engines:
        progress = search.fit_search(forest_search, features, labels, engines)
    assert progress.done == progress.total == 6


def test_search_completes_when_an_engine_is_killed(digits, tmp_path):
    from evosweep.data import read_split
    from evosweep.engines import engine_cluster

    features, labels = read_split(digits[0])
    spec = dict(SPEC, space={"C": {"logspace": [-1, 2, 4]}, "gamma": {"logspace": [-4, -2, 4]}})
    grid_search = search.make_search(Model.from_config("svc", spec), 42)
    with engine_cluster(2, slurm=False) as engines:
        # Killed while it runs a fit (each engine gets one of the first batches).
        killer = EngineKiller(engines.engine_pids()[0], tmp_path)
        estimator = grid_search.estimator
        hanging = hanging_on_victim(type(estimator), killer.pid, killer.fifo)
        grid_search.estimator = hanging(**estimator.get_params())
        progress = search.fit_search(grid_search, features, labels, engines)
        assert killer.join() == "fit"
        assert len(engines.client.ids) == 1  # the other engine finished the search
    assert progress.done == progress.total == 48
    assert len(grid_search.cv_results_["params"]) == 16


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"estimator": "sklearn.svm.NoSuchSVC"}, "search.models.m.estimator: module 'sklearn.svm'"),
        ({"estimator": "nosuchpkg.Model"}, "search.models.m.estimator: cannot import"),
        ({"params": {"kernal": "rbf"}}, "search.models.m.params.kernal: sklearn.svm.SVC has no"),
        ({"space": {"Cee": [1, 2]}}, "search.models.m.space.Cee: sklearn.svm.SVC has no"),
        ({"space": {"C": {"loguniform": [0.1, 10]}}}, "search.models.m.space.C: {loguniform"),
        (
            {"strategy": "random", "space": {"C": {"loguniform": [-1, 10]}}},
            "search.models.m.space.C: loguniform needs 0 < low",
        ),
    ],
)
def test_bad_model_is_one_line_config_error(change, message):
    with pytest.raises(ConfigError) as error:
        search.check_model("m", dict(SPEC, **change))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


WORKFLOW_CONFIG = iris_search(
    engines=2, svc_iris=svc_iris(space={"C": {"logspace": [-1, 1, 3]}, "gamma": [0.01, 0.1]})
)


def test_bad_config_stops_snakemake_before_any_job(tmp_path):
    config = json.loads(json.dumps(WORKFLOW_CONFIG))
    config["search"]["models"]["svc_iris"]["space"]["C"] = {"uniform": [0.1, 10]}
    result = snakemake(tmp_path, config, "-n", "results/leaderboard.csv", check=False)
    assert result.returncode != 0
    lines = evosweep_error_lines(result)
    assert lines == [
        "evosweep: config error at search.models.svc_iris.space.C: {uniform: [0.1, 10]} is a "
        "distribution; a grid needs a list, logspace, linspace or range "
        f"(fix {tmp_path / 'config.yaml'})"
    ]
    assert not (tmp_path / "results").exists()


def test_workflow_search_and_leaderboard(tmp_path):
    snakemake(tmp_path, WORKFLOW_CONFIG, "-c2", "results/leaderboard.csv")
    board = pd.read_csv(tmp_path / "results" / "leaderboard.csv")
    assert list(board["model"]) == ["svc_iris"] and board["workers"][0] == 2
    log = (tmp_path / "logs" / "search" / "svc_iris.log").read_text()
    assert "progress: 18/18 fits (100%)" in log and "ETA" in log
    assert "apply_async" not in log
