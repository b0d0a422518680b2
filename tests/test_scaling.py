"""Scaling table: medians of repeated timings, speedup with the spread of the repeats."""

import json

import pytest

from evosweep import scaling


def _timing(path, stage, workers, walls):
    scaling.write_timing(
        {"stage": stage, "name": "m", "workers": workers, "walls": walls, "evaluations": 10},
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
    scaling.plot(scaling.table(files), tmp_path / "speedup.png", dpi=50)
    assert (tmp_path / "speedup.png").stat().st_size > 0
    assert json.loads((tmp_path / "s1.json").read_text())["walls"] == [10.0, 12.0, 11.0]
