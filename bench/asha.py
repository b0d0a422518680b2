"""asha vs halving, side by side in one run: the same candidates and resources (samples per
rung). Two workloads:

- `sleepy` (default): 8 local engines of bench/sleepy.py's classifier, whose fits sleep (so 8
  engines fit on a 2-core host) for 1 to 4 time units across candidates;
- `forest`: the default config's forest_breast_cancer search (64 candidates, 5 folds) on its
  train split, 2 engines (goal: asha's best CV score >= halving's - 0.005 in <= its wall time).

Prints, for each, the engines-busy fraction (fit and score seconds / (wall x engines)), wall
time and best CV score, and the wall ratio asha / halving. Both run on one engine cluster,
started before the timing.

    python bench/asha.py [--workload sleepy|forest] [--engines N] [--candidates 27] [--rounds 1]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(  # the engines import sleepy from bench/
    filter(None, [str(BENCH), os.environ.get("PYTHONPATH")])
)
sys.path.insert(0, str(BENCH))

import yaml  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402

from evosweep import data  # noqa: E402
from evosweep.engines import engine_cluster  # noqa: E402
from evosweep.models import Model  # noqa: E402
from evosweep.search import fitting  # noqa: E402
from evosweep.search.strategies import asha, halving  # noqa: E402
from rounds import cv_fit_seconds, interleaved_rounds, median_over  # noqa: E402


def spec(candidates: int) -> dict:
    return {
        "dataset": "synthetic",
        "estimator": "sleepy.SleepyClassifier",
        "strategy": "halving",
        "n_iter": candidates,
        "space": {"C": {"logspace": [-3, 2, 12]}, "cost": [1, 2, 3, 4]},
        "cv": 3,
        "scoring": "accuracy",
    }


def sleepy_workload(candidates: int):
    features, labels = make_classification(n_samples=900, n_informative=6, random_state=0)
    return Model.from_config("sleepy", spec(candidates)), features, labels, "sleepy"


def forest_workload(_candidates: int):
    """The default config's forest search on its dataset's train split, as the workflow has it."""
    config = yaml.safe_load((BENCH.parent / "config" / "config.yaml").read_text())
    name = "forest_breast_cancer"
    model = Model.from_config(name, config["search"]["models"][name])
    dataset = config["datasets"][model.dataset]
    frame, _ = data.load(model.dataset, dataset, config["seed"])
    train, _ = data.split(model.dataset, dataset, frame, config["seed"], model.task)
    return model, train.drop(columns=data.TARGET), train[data.TARGET], "sklearn.ensemble"


WORKLOADS = {"sleepy": sleepy_workload, "forest": forest_workload}


def run_halving(model, features, labels, engines):
    search = halving.Halving().make_search(model, 0)
    search.refit = False  # asha's search.run refits nothing either: time the rungs only
    started = time.perf_counter()
    fitting.fit_search(search, features, labels, engines)
    wall = time.perf_counter() - started
    results = search.cv_results_
    busy = cv_fit_seconds(results, model.cv)
    rungs = sorted(set(int(n) for n in results["n_resources"]))
    last = results["iter"] == max(results["iter"])
    best = float(max(results["mean_test_score"][last]))
    return wall, busy, best, len(results["params"]), rungs


def run_asha(model, features, labels, engines):
    search = asha.make_search(model, 0, features, labels)
    started = time.perf_counter()
    with engines.joblib_backend():
        result = search.run(features, labels, engines.parallel_jobs)
    wall = time.perf_counter() - started
    fits = [fit for _, job_fits, _ in result.rows for fit in job_fits]
    busy = sum(fit["fit_time"] + fit["score_time"] for fit in fits)
    rungs = sorted({job.resources for job, _, _ in result.rows})
    return wall, busy, float(result.best[2]), len(result.rows), rungs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="sleepy")
    parser.add_argument("--engines", type=int, help="default: 8 for sleepy, 2 for forest")
    parser.add_argument("--candidates", type=int, default=27)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    args.engines = args.engines or (8 if args.workload == "sleepy" else 2)
    model, features, labels, module = WORKLOADS[args.workload](args.candidates)
    runners = {"halving": run_halving, "asha": run_asha}
    with engine_cluster(args.engines, slurm=False) as engines:
        with engines.joblib_backend():  # every engine imports the estimator before the timing
            Parallel(n_jobs=engines.parallel_jobs)(
                delayed(importlib.import_module)(module) for _ in range(4 * args.engines)
            )

        def measure(name):
            wall, busy, best, rows, rungs = runners[name](model, features, labels, engines)
            figures = {"wall": wall, "busy": busy / (wall * engines.n_engines), "best": best}
            print(
                f"{name:8s} wall {wall:6.1f} s  engines busy {figures['busy']:.3f}  "
                f"best CV {best:.4f}  candidate-rungs {rows}  samples per rung {rungs}",
                flush=True,
            )
            return figures

        rounds = interleaved_rounds(list(runners), measure, args.rounds)
    print(f"median of {len(rounds)} round(s), {args.engines} engines:")
    for name in runners:
        busy = median_over(rounds, lambda r, name=name: r[name]["busy"])
        best = median_over(rounds, lambda r, name=name: r[name]["best"])
        print(f"  {name:8s} engines busy {busy:.3f}  best CV {best:.4f}")
    ratio = median_over(rounds, lambda r: r["asha"]["wall"] / r["halving"]["wall"])
    print(f"wall ratio asha / halving: {ratio:.3f} (goal <= 0.75; asha busy goal >= 0.95)")


if __name__ == "__main__":
    main()
