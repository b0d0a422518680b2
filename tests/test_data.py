"""Data stage logic: sources, validation errors, reproducible splits."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evosweep import data
from evosweep.errors import ConfigError, DataError


def spec(source, **extra):
    return {"source": source, "test_size": 0.25, "stratify": None, "categorical": "keep", **extra}


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "wine", "iris"])
def test_sklearn_sources_load_and_split(name):
    train, test, summary = data.prepare(name, spec(f"sklearn:{name}"), seed=3)
    assert summary["rows"] == len(train) + len(test)
    assert summary["classes"] >= 2
    assert sum(summary["class_counts"].values()) == summary["rows"]
    assert data.TARGET in train.columns


def test_blobs_are_seeded_and_never_have_zero_centers():
    blob_spec = spec(
        "blobs", n_samples=300, centers=1, n_features=3, cluster_std=1.0, stratify=False
    )
    # One center means a single class: a clustering-only dataset still loads and splits.
    frame, digest = data.load("b", blob_spec, seed=7)
    assert frame.shape == (300, 4)
    again, digest_again = data.load("b", blob_spec, seed=7)
    assert digest == digest_again and frame.equals(again)
    other, digest_other = data.load("b", blob_spec, seed=8)
    assert digest_other != digest


def test_split_is_reproducible_and_stratified():
    s = spec("sklearn:iris")
    train1, test1, _ = data.prepare("iris", s, seed=11)
    train2, test2, _ = data.prepare("iris", s, seed=11)
    pd.testing.assert_frame_equal(train1, train2)
    pd.testing.assert_frame_equal(test1, test2)
    counts = test1[data.TARGET].value_counts()
    assert counts.max() - counts.min() <= 1  # stratified: 50/50/50 stays balanced
    train3, _, _ = data.prepare("iris", s, seed=12)
    assert not train1.equals(train3)


def write_csv(path, text):
    path.write_text(text)
    return str(path)


def test_csv_source_with_named_target_and_summary(tmp_path):
    rows = "\n".join(f"{i},{i * 2.5},{'a' if i % 2 else 'b'}" for i in range(20))
    path = write_csv(tmp_path / "ok.csv", "x,y,label\n" + rows + "\n")
    train, test, summary = data.prepare("mine", spec(f"csv:{path}", target="label"), seed=1)
    assert summary["features"] == 2 and summary["classes"] == 2
    assert summary["class_counts"] == {"a": 10, "b": 10}
    out = tmp_path / "out"
    data.write(train, test, summary, out / "train.parquet", out / "test.parquet", out / "s.json")
    features, labels = data.read_split(out / "train.parquet")
    assert list(features.columns) == ["x", "y"] and len(labels) == len(train)
    assert json.loads((out / "s.json").read_text())["source_sha256"] == summary["source_sha256"]


def test_parquet_source(tmp_path):
    frame = pd.DataFrame({"a": np.arange(12.0), "b": np.ones(12), "y": [0, 1] * 6})
    frame.to_parquet(tmp_path / "d.parquet")
    _, _, summary = data.prepare("p", spec(f"parquet:{tmp_path / 'd.parquet'}", target="y"), 0)
    assert summary["rows"] == 12


@pytest.mark.parametrize(
    ("content", "extra", "expected"),
    [
        (None, {}, "not found"),
        ("", {}, "is empty"),
        ("x,label\n", {}, "has a header but no rows"),
        ("x,y\n1,0\n2,1\n", {}, "column 'label' not in"),
        (
            "x,z,label\n1,inf,a\n2,3,b\n-inf,4,a\n5,-inf,b\n",
            {},
            "3 infinite (inf/-inf) value(s) in features: column 'x' row(s) 3; "
            "column 'z' row(s) 1, 4",
        ),
        ("x,label\n1,\n2,\n", {}, "datasets.mine.target: every row's target is missing"),
        ("x,label\n1,2.5\n2,2.5\n3,2.5\n", {"task": "regression"}, "the target is constant"),
        ("x,label\n1,a\n2,a\n3,a\n", {}, "a single class ('a')"),
        ("x,label\n1,a\n2,b\n3,b\n4,b\n", {}, "class 'a' has a single row"),
    ],
)
def test_bad_files_give_one_line_naming_the_problem(tmp_path, content, extra, expected):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError) as raised:
        data.preflight({"mine": spec(f"csv:{path}", target="label", **extra)}, seed=0)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_onehot_encoding_is_an_explicit_option(tmp_path):
    rows = "".join(f"{i},{'red' if i % 3 else 'blue'},{i % 2}\n" for i in range(12))
    path = write_csv(tmp_path / "c.csv", "x,colour,label\n" + rows)
    train, _, summary = data.prepare(
        "c", spec(f"csv:{path}", target="label", categorical="onehot"), 0
    )
    assert {"colour_red", "colour_blue"} <= set(train.columns)
    assert summary["features"] == 3


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_parquet_with_infinite_features_gives_one_line(tmp_path, value):
    frame = pd.DataFrame({"a": np.arange(12.0), "b": np.ones(12), "y": [0, 1] * 6})
    frame.loc[[2, 7], "b"] = value
    frame.to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataError) as raised:
        data.preflight({"p": spec(f"parquet:{tmp_path / 'd.parquet'}", target="y")}, seed=0)
    message = str(raised.value)
    assert "data error at datasets.p: 2 infinite (inf/-inf) value(s) in features: " in message
    assert "column 'b' row(s) 3, 8 (rows count from 1 after the header)" in message
    assert "\n" not in message


def test_embedded_dataset_frames_are_checked_for_infinite_values():
    """prepare() validates every source the same way, built-in ones included."""
    frame, _ = data.load("iris", spec("sklearn:iris"), seed=0)
    frame.iloc[0, 0] = np.inf
    frame.iloc[5, 1] = -np.inf
    with pytest.raises(DataError, match=r"2 infinite \(inf/-inf\) value\(s\) in features"):
        data.validate("iris", spec("sklearn:iris"), frame)


PENGUINS = str(Path(__file__).resolve().parent / "data" / "penguins.csv")


def test_penguin_species_is_a_stratified_classification_with_gaps_kept():
    train, test, summary = data.prepare("p", spec(f"csv:{PENGUINS}", target="species"), seed=2)
    assert summary["task"] == "classification"
    assert summary["task_source"] == "inferred: non-numeric target with 3 distinct values"
    assert summary["rows"] == 344 and summary["rows_dropped_missing_target"] == 0
    assert summary["class_counts"] == {"Adelie": 152, "Chinstrap": 68, "Gentoo": 124}
    assert summary["text_columns"] == ["island", "sex"]
    assert summary["numeric_columns"] == [
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "year",
    ]
    assert summary["missing_values"] == {
        "bill_length_mm": 2,
        "bill_depth_mm": 2,
        "flipper_length_mm": 2,
        "body_mass_g": 2,
        "sex": 11,
    }
    both = pd.concat([train, test])
    assert int(both.drop(columns=[data.TARGET]).isna().sum().sum()) == 19  # kept, not filled
    assert set(both["island"].dropna()) == {"Biscoe", "Dream", "Torgersen"}  # raw text kept
    share = test[data.TARGET].value_counts(normalize=True)
    whole = both[data.TARGET].value_counts(normalize=True)
    assert (share - whole).abs().max() < 0.02  # stratified by species


def test_penguin_mass_is_a_regression_without_its_unweighed_birds(caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("evosweep"), "propagate", True)
    caplog.set_level(logging.INFO, logger="evosweep.data")
    train, test, summary = data.prepare("m", spec(f"csv:{PENGUINS}", target="body_mass_g"), 4)
    assert summary["task"] == "regression"
    assert summary["task_source"] == "inferred: numeric target with 94 distinct values"
    assert summary["rows"] == 342 and summary["rows_dropped_missing_target"] == 2
    assert "dataset m: dropped 2 row(s) whose target is missing" in caplog.messages
    assert "dataset m: regression task (inferred: numeric target with 94 distinct values)" in (
        caplog.messages
    )
    assert "classes" not in summary
    assert summary["target_stats"]["min"] == 2700.0 and summary["target_stats"]["max"] == 6300.0
    assert summary["missing_values"] == {"sex": 9}
    assert len(train) + len(test) == 342 and not train[data.TARGET].isna().any()
    again, _, _ = data.prepare("m", spec(f"csv:{PENGUINS}", target="body_mass_g"), 4)
    pd.testing.assert_frame_equal(train, again)


def test_a_regression_split_is_the_plain_shuffled_split():
    frame = data.validate(
        "m",
        spec(f"csv:{PENGUINS}", target="body_mass_g"),
        data.load("m", spec(f"csv:{PENGUINS}", target="body_mass_g"), 0)[0],
    )
    train, test = data.split("m", spec("csv:x", stratify=False), frame, 5, "regression")
    auto_train, auto_test = data.split("m", spec("csv:x"), frame, 5, "regression")
    pd.testing.assert_frame_equal(train, auto_train)
    pd.testing.assert_frame_equal(test, auto_test)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"target": "body_mass_g", "stratify": True},
            "config error at datasets.p.stratify: a regression target is continuous and has "
            "no classes to stratify by; remove stratify or set it to false",
        ),
        (
            {"target": "species", "task": "regression"},
            "config error at datasets.p.task: regression needs a numeric target",
        ),
        (
            {"target": "bill_length_mm", "task": "classification"},
            "config error at datasets.p.task: classification needs discrete labels",
        ),
    ],
)
def test_settings_that_do_not_fit_the_task_are_config_errors(extra, expected):
    with pytest.raises(ConfigError) as raised:
        data.preflight({"p": spec(f"csv:{PENGUINS}", **extra)}, seed=0)
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)


def test_a_set_task_wins_over_inference():
    _, _, summary = data.prepare(
        "y", spec(f"csv:{PENGUINS}", target="year", task="regression"), seed=0
    )
    assert (summary["task"], summary["task_source"]) == ("regression", "config")
    _, _, inferred = data.prepare("y", spec(f"csv:{PENGUINS}", target="year"), seed=0)
    assert inferred["task"] == "classification"  # 3 distinct years


def test_preflight_profiles_every_dataset_for_the_model_checks():
    profiles = data.preflight(
        {
            "iris": spec("sklearn:iris"),
            "blobs": spec("blobs", n_samples=60, centers=3, n_features=2, cluster_std=1.0),
            "mass": spec(f"csv:{PENGUINS}", target="body_mass_g"),
        },
        seed=0,
    )
    assert {name: p.task for name, p in profiles.items()} == {
        "iris": "classification",
        "blobs": "clustering",
        "mass": "regression",
    }
    assert profiles["blobs"].task_source == "inferred: blobs are clusters"
    assert profiles["mass"].columns.text == ("species", "island", "sex")
    assert profiles["mass"].columns.missing == {"sex": 9}
    assert profiles["iris"].columns.missing == {}


def test_dataset_level_onehot_gives_a_gap_all_zero_columns():
    _, _, summary = data.prepare(
        "p", spec(f"csv:{PENGUINS}", target="species", categorical="onehot"), seed=0
    )
    assert summary["text_columns"] == []
    assert {"sex_female", "sex_male", "island_Dream"} <= set(summary["numeric_columns"])
    assert "sex" not in summary["missing_values"]
    frame = data.validate(
        "p",
        spec(f"csv:{PENGUINS}", target="species", categorical="onehot"),
        pd.read_csv(PENGUINS).rename(columns={"species": data.TARGET}),
    )
    no_sex = frame["sex_female"] + frame["sex_male"] == 0
    assert int(no_sex.sum()) == 11
