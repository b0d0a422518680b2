"""Scaling study: counts timed in alternating rounds; the table's medians of repeated timings,
speedup with the spread of the repeats."""

import json

import pytest

from evosweep import scaling
from evosweep.models import Model


def _point(stage, workers, walls, startups=(1.0, 1.5, 2.0)):
    return {
        "stage": stage,
        "name": "m",
        "workers": workers,
        "walls": walls,
        "startups": list(startups),
        "evaluations": 10,
    }


def test_table_reports_the_median_and_the_spread_of_repeats(tmp_path):
    path = tmp_path / "search.json"
    points = [
        _point("search", 1, [10.0, 12.0, 11.0]),
        _point("search", 2, [5.0, 8.0, 5.5]),
    ]
    scaling.write_timings(points, path)
    frame = scaling.table([path]).set_index("workers")
    assert list(frame["repeats"]) == [3, 3]
    assert frame.loc[1, "wall_seconds"] == 11.0 and frame.loc[2, "wall_seconds"] == 5.5
    assert frame.loc[2, "speedup"] == pytest.approx(2.0)
    assert frame.loc[2, "speedup_low"] == pytest.approx(11 / 8, abs=1e-3)
    assert frame.loc[2, "speedup_high"] == pytest.approx(11 / 5, abs=1e-3)
    assert frame.loc[2, "efficiency"] == pytest.approx(1.0)
    assert frame.loc[2, "startup_seconds"] == 1.5  # beside the speedup, not in it
    scaling.plot(scaling.table([path]), tmp_path / "speedup.png", dpi=50)
    assert (tmp_path / "speedup.png").stat().st_size > 0
    assert json.loads(path.read_text())[0]["walls"] == [10.0, 12.0, 11.0]


def test_rounds_alternate_the_order_of_the_counts():
    assert scaling.rounds([2, 1], 3) == [1, 2, 2, 1, 1, 2]
    assert scaling.rounds([1, 4, 2], 2) == [1, 2, 4, 4, 2, 1]
    assert scaling.rounds([1], 2) == [1, 1]


def test_a_search_point_times_the_fits_and_the_engines_start_apart(tmp_path):
    from evosweep.data import prepare, write

    train, test, summary = prepare(
        "digits", {"source": "sklearn:digits", "test_size": 0.3, "stratify": True}, 42
    )
    paths = [tmp_path / n for n in ("train.parquet", "test.parquet", "summary.json")]
    write(train, test, summary, *paths)
    spec = {
        "estimator": "sklearn.svm.SVC",
        "params": {},
        "strategy": "grid",
        "space": {"C": [0.5, 1.0, 2.0]},
        "cv": 2,
        "scoring": "accuracy",
    }
    points = scaling.time_search(
        Model.from_config("svc", spec), 42, paths[0], [2, 1], repeats=2, slurm=False
    )
    assert [point["workers"] for point in points] == [1, 2]
    for point in points:
        assert point["evaluations"] == 6
        assert len(point["walls"]) == len(point["startups"]) == 2
        assert all(seconds > 0 for seconds in point["walls"] + point["startups"])


def test_an_evolution_point_times_the_generations_and_the_launch_apart():
    problem = {
        "algorithm": "cma-es",
        "objective": "sphere",
        "dimensions": 3,
        "centroid": 1.0,
        "sigma": 1.0,
        "lambda": 8,
        "generations": 3,
        "checkpoint_every": 10,
        "chunksize": None,
    }
    points = scaling.time_evolution("sphere", problem, 42, [1, 2], repeats=2)
    assert [point["workers"] for point in points] == [1, 2]
    for point in points:
        assert point["evaluations"] == 24
        assert len(point["walls"]) == len(point["startups"]) == 2
        assert all(seconds > 0 for seconds in point["walls"] + point["startups"])
