"""The data stage through Snakemake: outputs, no-op rerun, and bad input stopping before any job."""

import json

import pytest

from helpers.workflow_runner import evosweep_error_lines, nothing_to_do, planned_jobs, snakemake

SMALL = {
    "seed": 5,
    "datasets": {
        "iris": {"source": "sklearn:iris", "test_size": 0.2},
        "blobs": {"source": "blobs", "n_samples": 200, "centers": 3},
    },
}


def test_data_stage_runs_then_nothing_to_do(tmp_path):
    snakemake(tmp_path, SMALL, "--cores", "2")
    for dataset in ("iris", "blobs"):
        folder = tmp_path / "results" / "data" / dataset
        assert (folder / "train.parquet").is_file() and (folder / "test.parquet").is_file()
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["seed"] == 5
        assert (tmp_path / "logs" / "data" / f"{dataset}.log").read_text().strip()
        assert (tmp_path / "benchmarks" / "data" / f"{dataset}.tsv").is_file()
    assert json.loads((tmp_path / "results/data/blobs/summary.json").read_text())["classes"] == 3
    again = snakemake(tmp_path, SMALL, "-n", "--cores", "2")
    assert nothing_to_do(again), again.stdout


def test_editing_one_dataset_reruns_only_its_chain(tmp_path):
    snakemake(tmp_path, SMALL, "--cores", "2")
    edited = json.loads(json.dumps(SMALL))
    edited["datasets"]["iris"]["test_size"] = 0.3
    dry = snakemake(tmp_path, edited, "-n", "--cores", "2")
    assert planned_jobs(dry) == {"prepare_data[dataset=iris]", "resources_table"}, dry.stdout


@pytest.mark.parametrize(
    ("dataset", "csv", "expected"),
    [
        ({"source": "csv:missing.csv", "target": "y"}, None, "file 'missing.csv' not found"),
        ({"source": "csv:d.csv", "target": "y"}, "", "is empty"),
        ({"source": "csv:d.csv", "target": "label"}, "a,y\n1,0\n2,1\n", "column 'label' not in"),
        (
            {"source": "csv:d.csv", "target": "y"},
            "a,b,y\n1,inf,0\n2,3,1\n",
            "1 infinite (inf/-inf) value(s) in features: column 'b' row(s) 1",
        ),
        ({"source": "csv:d.csv", "target": "y"}, "a,y\n1,0\n2,0\n", "a single class"),
        (
            {"source": "sklearn:iris", "test_size": 1.2},
            None,
            "datasets.bad.test_size: 1.2 is out of range",
        ),
        (
            {"source": "sklearn:iris", "test_size": 0},
            None,
            "datasets.bad.test_size: 0 is out of range",
        ),
        ({"source": "excel:d.xlsx"}, None, "datasets.bad.source: 'excel:d.xlsx' is not valid"),
        ({"source": "sklearn:iris", "colour": 1}, None, "datasets.bad: unknown key 'colour'"),
        (
            {"source": "sklearn:iris", "stratify": "yes"},
            None,
            "datasets.bad.stratify: expected boolean",
        ),
    ],
)
def test_bad_input_stops_before_any_job_with_one_line(tmp_path, dataset, csv, expected):
    """Gaps and text columns are a model's concern now (its `preprocess`): test_tables."""
    if csv is not None:
        (tmp_path / "d.csv").write_text(csv)
    result = snakemake(tmp_path, {"datasets": {"bad": dataset}}, "--cores", "1", check=False)
    assert result.returncode != 0
    lines = evosweep_error_lines(result)
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()
