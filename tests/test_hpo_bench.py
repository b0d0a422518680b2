"""bench/hpo.py on a small synthetic full-grid table: the --out columns, the "size + 1 if never"
rule, best_at_budget, determinism per seed, and one-line errors for tables that are no grid."""

import importlib.util
import itertools
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "hpo.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("hpo_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hpo = load_bench()


def write_table(path: Path) -> Path:
    """A 6 x 5 x 2 grid as the grid strategy writes it: logspace C, range k, a list of kernels."""
    rows = []
    for C, k, kernel in itertools.product(
        [10.0**e for e in range(-2, 4)], range(1, 10, 2), ["linear", "rbf"]
    ):
        score = 0.9 - 0.01 * (math.log10(C) - 1) ** 2 - 0.002 * (k - 5) ** 2
        rows.append(
            {
                "mean_fit_time": 0.1,
                "param_C": C,
                "param_k": k,
                "param_kernel": kernel,
                "mean_test_score": score - (0.05 if kernel == "linear" else 0.0),
                "std_test_score": 0.01,
            }
        )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_table_is_read_back_as_the_space_it_came_from(tmp_path):
    table = hpo.Table(write_table(tmp_path / "synthetic.csv"))
    assert table.space["C"] == {"logspace": [-2.0, 3.0, 6]}
    assert table.space["k"] == {"range": [1, 11, 2]}
    assert table.space["kernel"] == ["linear", "rbf"]
    assert table.size == 60 and table.best == pytest.approx(0.9)
    best = max(table.scores, key=table.scores.get)
    assert best == (3, 2, 1)  # C = 10, k = 5, rbf


def test_out_has_the_issue_columns_and_is_deterministic_per_seed(tmp_path):
    table = write_table(tmp_path / "synthetic.csv")
    outputs = []
    for name in ("first.csv", "second.csv"):
        out = tmp_path / name
        done = subprocess.run(
            [sys.executable, SCRIPT, table, "--seeds", "3", "--budget", "10", "--out", out],
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(pd.read_csv(out))
    frame = outputs[0]
    assert list(frame.columns) == [
        "table",
        "strategy",
        "seed",
        "candidates_to_best",
        "best_at_budget",
    ]
    assert set(frame["strategy"]) == set(hpo.STRATEGIES)
    assert len(frame) == 3 * len(hpo.STRATEGIES) and set(frame["table"]) == {"synthetic"}
    assert frame["candidates_to_best"].between(1, 61).all()
    assert frame.equals(outputs[1])
    assert "optuna-cmaes" in done.stdout and "candidates_to_best" in done.stdout


def test_size_plus_one_when_never_found_and_best_within_the_budget(tmp_path):
    table = hpo.Table(write_table(tmp_path / "synthetic.csv"))
    best = max(table.scores, key=table.scores.get)
    others = [key for key in table.scores if key != best]
    # A strategy that stops before it reaches the best: never found.
    assert hpo.measure(table, iter(others[:20]), budget=10) == (
        61,
        max(table.scores[key] for key in others[:10]),
    )
    # Found at the 7th candidate; the best within a budget of 5 is among the first 5 only.
    order = others[:6] + [best] + others[6:]
    to_best, at_budget = hpo.measure(table, iter(order), budget=5)
    assert to_best == 7
    assert at_budget == max(table.scores[key] for key in others[:5])


def test_every_strategy_replays_distinct_candidates(tmp_path):
    table = hpo.Table(write_table(tmp_path / "synthetic.csv"))
    for name, replay in hpo.STRATEGIES.items():
        keys = list(itertools.islice(replay(table, 0, 2), 30))
        assert len(keys) == len(set(keys)), name
        assert set(keys) <= set(table.scores), name


def test_a_table_that_is_not_a_full_grid_is_refused_in_one_line(tmp_path):
    path = write_table(tmp_path / "partial.csv")
    pd.read_csv(path).iloc[:-1].to_csv(path, index=False)
    done = subprocess.run(
        [sys.executable, SCRIPT, path, "--seeds", "1"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "not a full grid" in done.stderr
    assert "strategy: grid" in done.stderr
