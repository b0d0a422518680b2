"""Model-based search in the pipeline against the full grid, seed by seed: does `tpe` (or
`cmaes`) with `n_iter: 40` reach the grid's best CV score (within 5e-4) on the seed SVC space,
with at most 10 % of the grid's fits?

For each seed, one workflow run (a scratch copy, the default config's digits dataset) searches
the seed SVC space three ways: the full grid (400 candidates), `tpe` and `cmaes` with 40
candidates each, all on the same split and folds (the seed makes both). Prints a line per seed
and strategy and the count of seeds reaching the grid's best (goal: 4 of 5).

    python bench/budget.py [--seeds 0 1 2 3 4] [--n-iter 40] [--engines 2] [--out FILE.csv]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.workflow_runner import copy_workflow, snakemake  # noqa: E402

TOLERANCE = 5e-4
STRATEGIES = ("tpe", "cmaes")


def config(seed: int, n_iter: int, engines: int) -> dict:
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    grid = default["search"]["models"]["svc_rbf_digits"]
    models = {"grid": grid} | {
        strategy: grid | {"strategy": strategy, "n_iter": n_iter} for strategy in STRATEGIES
    }
    return {
        "seed": seed,
        "datasets": {"digits": default["datasets"]["digits"]},
        "search": {"engines": engines, "models": models},
    }


def run_seed(seed: int, n_iter: int, engines: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix=f"budget-{seed}-") as scratch:
        root = copy_workflow(Path(scratch))
        plan = config(seed, n_iter, engines)
        targets = [f"results/search/{name}/summary.json" for name in plan["search"]["models"]]
        snakemake(root, plan, f"-c{engines}", *targets, timeout=None)
        summaries = {
            name: json.loads((root / "results" / "search" / name / "summary.json").read_text())
            for name in plan["search"]["models"]
        }
    grid = summaries["grid"]
    rows = []
    for strategy in STRATEGIES:
        found = summaries[strategy]
        rows.append(
            {
                "seed": seed,
                "strategy": strategy,
                "best_score": found["best_score"],
                "grid_best_score": grid["best_score"],
                "reached": found["best_score"] >= grid["best_score"] - TOLERANCE,
                "fits": found["n_fits"],
                "fits_share": found["n_fits"] / grid["n_fits"],
            }
        )
        print(
            f"seed {seed} {strategy:6s} best {found['best_score']:.5f} grid {grid['best_score']:.5f}"
            f"  reached {rows[-1]['reached']!s:5s}  fits {found['n_fits']} of {grid['n_fits']}",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--n-iter", type=int, default=40)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    frame = pd.DataFrame(
        [row for seed in args.seeds for row in run_seed(seed, args.n_iter, args.engines)]
    )
    if args.out:
        frame.to_csv(args.out, index=False)
    for strategy, rows in frame.groupby("strategy"):
        print(
            f"{strategy}: reached the grid's best (within {TOLERANCE}) for {rows['reached'].sum()}"
            f" of {len(rows)} seeds (goal >= 4 of 5), fits {rows['fits_share'].max():.1%} of the"
            " grid's at most (goal <= 10 %)"
        )


if __name__ == "__main__":
    main()
