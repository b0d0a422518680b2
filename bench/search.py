"""Search speed, side by side in one run: serial, loky n_jobs=2, ipyparallel 1 and 2 engines.

An SVC grid on digits sized to about a minute serially (the seed workload's shape). Prints the
ratios the issue sets goals for: 2 engines vs 1 (>= 1.9), ipyparallel-2 vs loky-2 (<= 1.03), and
the start time of 2 local engines (<= 3 s). The variant ipyparallel-2-open runs 2 engines without
the cluster's protection (CURVE, orphan watchdogs): ipyparallel-2 vs ipyparallel-2-open is the
protection's cost (<= 1.03). The variant ipyparallel-2-journal records every fit in a fresh
journal, as a search with a checkpoint does: its ratio to ipyparallel-2 is the journal's cost.

This host is shared and noisy (the same fits vary by 20 % from minute to minute), so the
variants run in interleaved rounds (bench/rounds.py); each ratio is taken within a round and
the median over rounds is reported. Workers are warmed up (scikit-learn imported) before
timing, for loky's workers and the engines alike.

    python bench/search.py [--rounds 3] [--variants ipyparallel-2 ipyparallel-2-open]
    python bench/search.py --variants ipyparallel-2 ipyparallel-2-journal
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import psutil  # noqa: E402
from joblib import Parallel, delayed, parallel_config  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from evosweep import search  # noqa: E402
from evosweep.engines import engine_cluster  # noqa: E402
from evosweep.journal import FitJournal  # noqa: E402
from evosweep.models import Model  # noqa: E402
from rounds import interleaved_rounds, median_over  # noqa: E402

SPEC = {
    "dataset": "digits",
    "estimator": "sklearn.svm.SVC",
    "params": {"kernel": "rbf", "shrinking": False},
    "strategy": "grid",
    "space": {"C": {"logspace": [-6, 6, 10]}, "gamma": {"logspace": [-6, 1, 10]}},
    "cv": 5,
    "scoring": "accuracy",
}


VARIANTS = (
    "serial",
    "loky-2",
    "ipyparallel-1",
    "ipyparallel-2",
    "ipyparallel-2-open",
    "ipyparallel-2-journal",
)


def _import_estimator():
    import sklearn.model_selection  # noqa: F401
    import sklearn.svm  # noqa: F401


def timed_fit(features, labels, n_jobs, backend_context, cpu_seconds=time.process_time):
    """(wall seconds, CPU seconds by `cpu_seconds`, mean test scores) of the grid's fit."""
    grid = search.make_search(Model.from_config("bench", SPEC), 42)
    grid.n_jobs, grid.verbose = n_jobs, 0
    with backend_context():
        Parallel()(delayed(_import_estimator)() for _ in range(2 * n_jobs))
        cpu = cpu_seconds()
        started = time.perf_counter()
        grid.fit(features, labels)
    seconds = time.perf_counter() - started
    return seconds, cpu_seconds() - cpu, grid.cv_results_["mean_test_score"]


def cluster_cpu_seconds(engines):
    """A clock of the CPU seconds used by this process and the cluster's (controller,
    schedulers, engines, nannies): steadier than wall time on a busy host."""
    roots = [engines.cluster.controller.process.pid, *engines.engine_pids()]
    processes = [psutil.Process(pid) for pid in roots]
    processes += [child for process in list(processes) for child in process.children(True)]

    def total():
        return time.process_time() + sum(sum(p.cpu_times()[:2]) for p in processes)

    return total


def run_variant(name, features, labels):
    """(fit seconds, fit CPU seconds, mean test scores, engine start seconds or None)."""
    if name == "serial":
        return *timed_fit(features, labels, 1, lambda: parallel_config(backend="sequential")), None
    if name == "loky-2":
        return *timed_fit(
            features, labels, 2, lambda: parallel_config(backend="loky", n_jobs=2)
        ), None
    n_engines = int(name.split("-")[1])
    protect = not name.endswith("-open")
    with (
        engine_cluster(n_engines, slurm=False, protect=protect) as engines,
        tempfile.TemporaryDirectory() as scratch,
    ):
        backend = engines.joblib_backend
        if name.endswith("-journal"):
            journal = FitJournal(Path(scratch) / "bench.journal", {"bench": SPEC})
            backend = functools.partial(engines.joblib_backend, journal=journal)
        figures = timed_fit(
            features,
            labels,
            engines.parallel_jobs,
            backend,
            cpu_seconds=cluster_cpu_seconds(engines),
        )
        if name.endswith("-journal"):
            assert len(journal) == 100 * SPEC["cv"] and journal.reused == 0
            journal.close()
        return *figures, engines.start_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args()
    variants = [name for name in VARIANTS if name in args.variants]
    digits = load_digits()
    features, _, labels, _ = train_test_split(
        digits.data, digits.target, test_size=0.3, random_state=42, stratify=digits.target
    )

    def measure(name):
        seconds, cpu, scores, start_seconds = run_variant(name, features, labels)
        print(f"{name:22s} {seconds:6.1f} s  cpu {cpu:6.1f} s", flush=True)
        return {"seconds": seconds, "cpu": cpu, "start": start_seconds, "scores": scores}

    rounds = interleaved_rounds(variants, measure, args.rounds)
    reference = rounds[0][variants[0]]["scores"]
    for times in rounds:
        for name, figures in times.items():
            assert (figures["scores"] == reference).all(), f"{name} found different scores"
    print_ratios(rounds, variants)


def print_ratios(rounds, variants) -> None:
    """Each variant's median time, and the ratios the goals are about."""

    def median(figure):
        return median_over(rounds, figure)

    fits = 100 * SPEC["cv"]
    print(f"median of {len(rounds)} interleaved rounds, {fits} fits each:")
    for name in variants:
        seconds = median(lambda times, name=name: times[name]["seconds"])
        speedup = ""
        if "serial" in variants:
            ratio = median(
                lambda times, name=name: times["serial"]["seconds"] / times[name]["seconds"]
            )
            speedup = f"  speedup vs serial {ratio:.2f}"
        print(f"  {name:22s} {seconds:7.1f} s{speedup}")
    if {"ipyparallel-2", "ipyparallel-2-open"} <= set(variants):
        protected, open_ = "ipyparallel-2", "ipyparallel-2-open"
        protection = median(lambda times: times[protected]["seconds"] / times[open_]["seconds"])
        cpu = median(lambda times: times[protected]["cpu"] / times[open_]["cpu"])
        start = median(lambda times: times[protected]["start"] - times[open_]["start"])
        print(f"wall ratio protected / open, 2 engines:   {protection:.3f} (goal <= 1.03)")
        print(f"CPU ratio (client and cluster processes): {cpu:.3f}")
        print(f"start time, protected minus open:         {start:+.2f} s")
    if {"ipyparallel-2", "ipyparallel-2-journal"} <= set(variants):
        plain, journalled = "ipyparallel-2", "ipyparallel-2-journal"
        cost = median(lambda times: times[journalled]["seconds"] / times[plain]["seconds"])
        cpu = median(lambda times: times[journalled]["cpu"] / times[plain]["cpu"])
        print(f"wall ratio journal on / off, 2 engines:   {cost:.3f} (goal: no measurable cost)")
        print(f"CPU ratio (client and cluster processes): {cpu:.3f}")
    if set(VARIANTS[:4]) - set(variants):
        return  # the goals below need all four
    two_over_one = median(
        lambda times: times["ipyparallel-1"]["seconds"] / times["ipyparallel-2"]["seconds"]
    )
    versus_loky = median(
        lambda times: times["ipyparallel-2"]["seconds"] / times["loky-2"]["seconds"]
    )
    print(f"speedup ipyparallel 2 engines / 1 engine: {two_over_one:.2f} (goal >= 1.9)")
    print(f"wall ratio ipyparallel-2 / loky-2:        {versus_loky:.3f} (goal <= 1.03)")
    print(
        f"cluster start, 2 local engines:           {median(lambda times: times['ipyparallel-2']['start']):.2f} s"
        " (goal <= 3 s)"
    )


if __name__ == "__main__":
    main()
