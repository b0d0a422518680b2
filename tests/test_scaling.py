"""Scaling table: medians of repeated timings, speedup with the spread of the repeats."""

import json

import pytest

from evosweep import scaling


def _timing(path, stage, workers, walls, startups=(1.0, 1.5, 2.0)):
    scaling.write_timing(
        {
            "stage": stage,
            "name": "m",
            "workers": workers,
            "walls": walls,
            "startups": list(startups),
            "evaluations": 10,
        },
        path,
    )
    return path


def test_table_reports_the_median_and_the_spread_of_repeats(tmp_path):
    files = [
        _timing(tmp_path / "s1.json", "search", 1, [10.0, 12.0, 11.0]),
        _timing(tmp_path / "s2.json", "search", 2, [5.0, 8.0, 5.5]),
    ]
    frame = scaling.table(files).set_index("workers")
    assert list(frame["repeats"]) == [3, 3]
    assert frame.loc[1, "wall_seconds"] == 11.0 and frame.loc[2, "wall_seconds"] == 5.5
    assert frame.loc[2, "speedup"] == pytest.approx(2.0)
    assert frame.loc[2, "speedup_low"] == pytest.approx(11 / 8, abs=1e-3)
    assert frame.loc[2, "speedup_high"] == pytest.approx(11 / 5, abs=1e-3)
    assert frame.loc[2, "efficiency"] == pytest.approx(1.0)
    assert frame.loc[2, "startup_seconds"] == 1.5  # beside the speedup, not in it
    scaling.plot(scaling.table(files), tmp_path / "speedup.png", dpi=50)
    assert (tmp_path / "speedup.png").stat().st_size > 0
    assert json.loads((tmp_path / "s1.json").read_text())["walls"] == [10.0, 12.0, 11.0]


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
    timing = scaling.time_search("svc", spec, 42, paths[0], 2, repeats=2, slurm=False)
    assert timing["evaluations"] == 6
    assert len(timing["walls"]) == len(timing["startups"]) == 2
    assert all(seconds > 0 for seconds in timing["walls"] + timing["startups"])


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
    timing = scaling.time_evolution("sphere", problem, 42, 2, repeats=2)
    assert timing["evaluations"] == 24
    assert len(timing["walls"]) == len(timing["startups"]) == 2
    assert all(seconds > 0 for seconds in timing["walls"] + timing["startups"])
