"""Search speed, side by side in one run: serial, loky n_jobs=2, ipyparallel 1 and 2 engines.

An SVC grid on digits sized to about a minute serially (the seed workload's shape). Prints the
ratios the issue sets goals for: 2 engines vs 1 (>= 1.9), ipyparallel-2 vs loky-2 (<= 1.03), and
the start time of 2 local engines (<= 3 s).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from joblib import parallel_config  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from evosweep import search  # noqa: E402
from evosweep.engines import engine_cluster  # noqa: E402

SPEC = {
    "dataset": "digits",
    "estimator": "sklearn.svm.SVC",
    "params": {"kernel": "rbf", "shrinking": False},
    "strategy": "grid",
    "space": {"C": {"logspace": [-6, 6, 10]}, "gamma": {"logspace": [-6, 1, 10]}},
    "cv": 5,
    "scoring": "accuracy",
}


def timed_fit(features, labels, n_jobs, backend_context):
    grid = search.make_search("bench", SPEC, 42, n_jobs=n_jobs)
    grid.verbose = 0
    with backend_context():
        started = time.perf_counter()
        grid.fit(features, labels)
    return time.perf_counter() - started, grid.cv_results_["mean_test_score"]


def main() -> None:
    digits = load_digits()
    features, _, labels, _ = train_test_split(
        digits.data, digits.target, test_size=0.3, random_state=42, stratify=digits.target
    )
    times = {}
    times["serial"], reference = timed_fit(
        features, labels, 1, lambda: parallel_config(backend="sequential")
    )
    times["loky-2"], scores = timed_fit(
        features, labels, 2, lambda: parallel_config(backend="loky", n_jobs=2)
    )
    assert (scores == reference).all()
    start_seconds = []
    for n in (1, 2):
        with engine_cluster(n, slurm=False) as engines:
            start_seconds.append(engines.start_seconds)
            times[f"ipyparallel-{n}"], scores = timed_fit(
                features, labels, engines.parallel_jobs, engines.joblib_backend
            )
        assert (scores == reference).all()
    fits = 100 * SPEC["cv"]
    for name, seconds in times.items():
        print(
            f"{name:14s} {seconds:7.1f} s  ({fits} fits, speedup vs serial {times['serial'] / seconds:.2f})"
        )
    print(
        f"speedup ipyparallel 2 engines / 1 engine: {times['ipyparallel-1'] / times['ipyparallel-2']:.2f} (goal >= 1.9)"
    )
    print(
        f"wall ratio ipyparallel-2 / loky-2:        {times['ipyparallel-2'] / times['loky-2']:.3f} (goal <= 1.03)"
    )
    print(f"cluster start, 2 local engines:           {start_seconds[1]:.2f} s (goal <= 3 s)")


if __name__ == "__main__":
    main()
