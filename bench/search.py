"""Search speed, side by side in one run: serial, loky n_jobs=2, ipyparallel 1 and 2 engines.

The workload `svc` (default) is an SVC grid on digits sized to about a minute serially (the seed
workload's shape). Prints the ratios the issue sets goals for: 2 engines vs 1 (>= 1.9),
ipyparallel-1 vs serial (<= 1.03), ipyparallel-2 vs loky-2 (<= 1.03), and the start time of 2
local engines (<= 3 s). The variant ipyparallel-2-open runs 2 engines without
the cluster's protection (CURVE, orphan watchdogs): ipyparallel-2 vs ipyparallel-2-open is the
protection's cost (<= 1.03). The variant ipyparallel-2-journal records every fit in a fresh
journal, as a search with a checkpoint does: its ratio to ipyparallel-2 is the journal's cost.

This host is shared and noisy (the same fits vary by 20 % from minute to minute), so the
variants run in interleaved rounds (bench/rounds.py); each ratio is taken within a round and
the median over rounds is reported. Workers are warmed up (scikit-learn imported) before
timing, for loky's workers and the engines alike.

The variant serial-pair runs two serial searches at once in two processes: their wall time over
one serial search's is the floor, on this machine, of any 2-worker run over serial / 2 (each
fit is slower while both cores are busy).

The workload `trees` is a grid of 1,000 fits of about 20 ms (decision trees on 5,000 synthetic
samples), where dispatch costs show: ipyparallel-2 against serial / 2 (goal <= 3 % over), side
by side with loky-2. The variants ending in -inline send the training data with every batch
(engine_data off): the cost the data-once dispatch saves. For every ipyparallel variant the
controller's CPU seconds (its process and its schedulers) per task sent are printed. For the
2-worker variants the time over serial / 2 is split in two: the workers' share of the wall time
busy with fits (their own fit and score seconds, from cv_results_) and those seconds over
serial's (the fits slowed by both cores being busy). For ipyparallel-2 the CPU seconds of the
client (this process: building, pickling and sending the batches, reading the replies) and of the
controller are printed per batch and over the two cores' wall time: with an engine on every core,
that share is taken from the fits.

    python bench/search.py [--rounds 3] [--variants ipyparallel-2 ipyparallel-2-open]
    python bench/search.py --variants ipyparallel-2 ipyparallel-2-journal
    python bench/search.py --workload trees
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
from rounds import cv_fit_seconds, interleaved_rounds, median_over  # noqa: E402

SPEC = {
    "dataset": "digits",
    "estimator": "sklearn.svm.SVC",
    "params": {"kernel": "rbf", "shrinking": False},
    "strategy": "grid",
    "space": {"C": {"logspace": [-6, 6, 10]}, "gamma": {"logspace": [-6, 1, 10]}},
    "cv": 5,
    "scoring": "accuracy",
}


# 200 candidates x 5 folds of a decision tree taking about 20 ms of CPU to fit.
TREES_SPEC = {
    "dataset": "synthetic",
    "estimator": "sklearn.tree.DecisionTreeClassifier",
    "params": {"random_state": 0},
    "strategy": "grid",
    "space": {"min_samples_leaf": {"range": [1, 51, 1]}, "max_features": [0.2, 0.3, 0.4, 0.5]},
    "cv": 5,
    "scoring": "accuracy",
}


def _digits():
    digits = load_digits()
    features, _, labels, _ = train_test_split(
        digits.data, digits.target, test_size=0.3, random_state=42, stratify=digits.target
    )
    return features, labels


def _synthetic():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=5000, n_features=20, n_informative=10, random_state=0)


WORKLOADS = {"svc": (SPEC, _digits), "trees": (TREES_SPEC, _synthetic)}
VARIANTS = (
    "serial",
    "serial-pair",
    "loky-2",
    "ipyparallel-1",
    "ipyparallel-1-inline",
    "ipyparallel-2",
    "ipyparallel-2-inline",
    "ipyparallel-2-open",
    "ipyparallel-2-journal",
)
DEFAULT_VARIANTS = {
    "svc": ("serial", "loky-2", "ipyparallel-1", "ipyparallel-2"),
    "trees": ("serial", "serial-pair", "loky-2", "ipyparallel-2", "ipyparallel-2-inline"),
}


def _import_estimator(_=None):
    import sklearn.model_selection  # noqa: F401
    import sklearn.svm  # noqa: F401
    import sklearn.tree  # noqa: F401


def timed_fit(spec, features, labels, n_jobs, backend_context, cpu_seconds=time.process_time):
    """(wall seconds, CPU seconds by `cpu_seconds`, cv_results_) of the grid's fit."""
    grid = search.make_search(Model.from_config("bench", spec), 42)
    grid.n_jobs, grid.verbose = n_jobs, 0
    with backend_context():
        Parallel()(delayed(_import_estimator)() for _ in range(2 * n_jobs))
        cpu = cpu_seconds()
        started = time.perf_counter()
        grid.fit(features, labels)
    seconds = time.perf_counter() - started
    return seconds, cpu_seconds() - cpu, grid.cv_results_


def _processes(pids):
    processes = [psutil.Process(pid) for pid in pids]
    return processes + [child for process in processes for child in process.children(True)]


def _cpu(processes):
    return sum(sum(process.cpu_times()[:2]) for process in processes)


def cluster_cpu_seconds(engines):
    """A clock of the CPU seconds used by this process and the cluster's (controller,
    schedulers, engines, nannies): steadier than wall time on a busy host."""
    processes = _processes([engines.cluster.controller.process.pid, *engines.engine_pids()])
    return lambda: time.process_time() + _cpu(processes)


def serial_fit(spec, features, labels):
    context = functools.partial(parallel_config, backend="sequential", n_jobs=1)
    return timed_fit(spec, features, labels, 1, context)


def serial_pair(spec, features, labels):
    """Two serial searches at once in two processes: how much slower each fit gets when both
    cores are busy, the floor of any 2-worker run on this machine."""
    import concurrent.futures

    with concurrent.futures.ProcessPoolExecutor(2, initializer=_import_estimator) as pool:
        list(pool.map(_import_estimator, range(2)))  # both workers started and warm
        started = time.perf_counter()
        fits = [pool.submit(serial_fit, spec, features, labels) for _ in range(2)]
        (_, cpu, results), (_, other_cpu, _) = (fit.result() for fit in fits)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": cpu + other_cpu, "results": results}


def run_variant(name, spec, features, labels):
    """Figures of one variant: fit seconds and CPU seconds, cv_results_, engine start seconds
    (ipyparallel), the controller's and this process's CPU seconds and the tasks sent
    (ipyparallel)."""
    figures = {"start": None, "controller": None, "client": None, "tasks": None}
    if name == "serial-pair":
        return {**figures, **serial_pair(spec, features, labels)}
    if name in ("serial", "loky-2"):
        n_jobs, backend = (1, "sequential") if name == "serial" else (2, "loky")
        context = functools.partial(parallel_config, backend=backend, n_jobs=n_jobs)
        figures["seconds"], figures["cpu"], figures["results"] = timed_fit(
            spec, features, labels, n_jobs, context
        )
        return figures
    n_engines = int(name.split("-")[1])
    with (
        engine_cluster(n_engines, slurm=False, protect=not name.endswith("-open")) as engines,
        tempfile.TemporaryDirectory() as scratch,
    ):
        options = {"share_data": not name.endswith("-inline")}
        if name.endswith("-journal"):
            options["journal"] = FitJournal(Path(scratch) / "bench.journal", {"bench": spec})
        backend = functools.partial(engines.joblib_backend, **options)
        controller = _processes([engines.cluster.controller.process.pid])
        controller_cpu, tasks = _cpu(controller), len(engines.client.history)
        client_cpu = time.process_time()
        figures["seconds"], figures["cpu"], figures["results"] = timed_fit(
            spec,
            features,
            labels,
            engines.parallel_jobs,
            backend,
            cpu_seconds=cluster_cpu_seconds(engines),
        )
        figures["controller"] = _cpu(controller) - controller_cpu
        figures["client"] = time.process_time() - client_cpu
        figures["tasks"] = len(engines.client.history) - tasks
        if "journal" in options:
            fits = len(figures["results"]["params"]) * spec["cv"]
            assert len(options["journal"]) == fits and options["journal"].reused == 0
            options["journal"].close()
        figures["start"] = engines.start_seconds
        return figures


def tune(batch_seconds, controller_args) -> None:
    """Try other batch durations or controller settings than the defaults."""
    from evosweep.engines import backend, cluster

    if batch_seconds is not None:
        backend._ViewBackend.MIN_IDEAL_BATCH_DURATION = batch_seconds
    if controller_args:
        settings = cluster._cluster_settings

        def tuned(*args, **kwargs):
            config, arguments, *placement = settings(*args, **kwargs)
            return config, [*arguments, *controller_args], *placement

        cluster._cluster_settings = tuned
    print(
        f"batches of >= {backend._ViewBackend.MIN_IDEAL_BATCH_DURATION:g} s;"
        f" controller options added: {' '.join(controller_args) or 'none'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="svc")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS)
    parser.add_argument(
        "--batch-seconds",
        type=float,
        help="joblib's MIN_IDEAL_BATCH_DURATION for the engines (default: the backend's)",
    )
    parser.add_argument(
        "--controller-args",
        default="",
        help="extra ipcontroller options, e.g. --controller-args='--TaskScheduler.hwm=2'",
    )
    args = parser.parse_args()
    tune(args.batch_seconds, args.controller_args.split())
    chosen = args.variants or DEFAULT_VARIANTS[args.workload]
    variants = [name for name in VARIANTS if name in chosen]
    spec, load = WORKLOADS[args.workload]
    features, labels = load()

    def measure(name):
        figures = run_variant(name, spec, features, labels)
        figures["fit_seconds"] = cv_fit_seconds(figures["results"], spec["cv"])
        controller = ""
        if figures["tasks"]:
            per_task = 1000 * figures["controller"] / figures["tasks"]
            controller = f"  controller {per_task:5.2f} ms CPU/task, {figures['tasks']} tasks"
        print(
            f"{name:22s} {figures['seconds']:6.1f} s  cpu {figures['cpu']:6.1f} s{controller}",
            flush=True,
        )
        return figures

    rounds = interleaved_rounds(variants, measure, args.rounds)
    reference = rounds[0][variants[0]]["results"]
    for times in rounds:
        for name, figures in times.items():
            scores = figures["results"]["mean_test_score"]
            assert (scores == reference["mean_test_score"]).all(), f"{name}: different scores"
    fits = len(reference["params"]) * spec["cv"]
    fit_ms = 1000 * reference["mean_fit_time"].mean()
    print(f"median of {len(rounds)} interleaved rounds, {fits} fits each ({fit_ms:.0f} ms a fit):")
    print_ratios(rounds, variants)


def _ratio(rounds, numerator, denominator, figure="seconds"):
    """Median over rounds of one variant's figure over another's, taken within each round."""
    return median_over(rounds, lambda times: times[numerator][figure] / times[denominator][figure])


def print_ratios(rounds, variants) -> None:
    """Each variant's median time and controller CPU per task, then the goals' ratios."""
    for name in variants:
        seconds = median_over(rounds, lambda times, name=name: times[name]["seconds"])
        speedup = ""
        if "serial" in variants:
            speedup = f"  speedup vs serial {1 / _ratio(rounds, name, 'serial'):.2f}"
        controller = ""
        if rounds[0][name]["tasks"]:
            per_task = median_over(rounds, lambda t, n=name: t[n]["controller"] / t[n]["tasks"])
            controller = f"  controller {1000 * per_task:.2f} ms CPU/task"
        print(f"  {name:22s} {seconds:7.1f} s{speedup}{controller}")
    chosen = set(variants)
    if {"serial", "serial-pair"} <= chosen:
        pair = _ratio(rounds, "serial-pair", "serial")
        print(
            f"two serial searches at once / one alone: {pair:.3f}: a 2-worker run's floor is"
            f" {100 * (pair - 1):+.1f} % over serial / 2 on this machine"
        )
    if "serial" in chosen:
        for name in ("loky-2", "ipyparallel-2", "ipyparallel-2-inline"):
            if name in chosen:
                over = 100 * (2 * _ratio(rounds, name, "serial") - 1)
                cpu = ""  # loky's workers are not measured, only the client's CPU
                if name.startswith("ipyparallel"):
                    cpu = f"; CPU / serial's {_ratio(rounds, name, 'serial', 'cpu'):.3f}"
                print(f"{name:20s} over serial / 2: {over:+.1f} % (goal <= 3 %){cpu}")
        for name in ("ipyparallel-1", "ipyparallel-1-inline"):
            if name in chosen:
                wall, cpu = (_ratio(rounds, name, "serial", f) for f in ("seconds", "cpu"))
                print(f"{name:20s} / serial, wall: {wall:.3f} (goal <= 1.03); CPU: {cpu:.3f}")
    for data_once in ("ipyparallel-1", "ipyparallel-2"):
        if {data_once, f"{data_once}-inline"} <= chosen:
            wall = _ratio(rounds, data_once, f"{data_once}-inline")
            print(f"{data_once} data once / with every batch, wall: {wall:.3f}")
    print_busy(rounds, chosen)
    print_other_goals(rounds, chosen)


def print_busy(rounds, chosen) -> None:
    """Where a 2-worker run's time over serial / 2 goes: its workers idle (dispatch, the
    wait for the next batch, the ends of the call) or its fits slower than serial's (two cores
    busy, and the client and controller on them too)."""
    if "serial" not in chosen:
        return
    share = median_over(rounds, lambda t: t["serial"]["fit_seconds"] / t["serial"]["seconds"])
    print(f"serial               fits {share:.3f} of the wall time (over = own time x this / busy)")
    for name in ("loky-2", "ipyparallel-2", "ipyparallel-2-inline"):
        if name in chosen:
            busy = median_over(
                rounds, lambda t, n=name: t[n]["fit_seconds"] / (2 * t[n]["seconds"])
            )
            slower = median_over(
                rounds, lambda t, n=name: t[n]["fit_seconds"] / t["serial"]["fit_seconds"]
            )
            print(
                f"{name:20s} workers busy with fits {busy:.3f} of the wall time;"
                f" the fits' own time / serial's {slower:.3f}"
            )
    if "ipyparallel-2" in chosen:
        # Both cores run engines, so every CPU second of this process (building and pickling
        # the batches, reading the replies) and of the controller is taken from a fit.
        def beside_engines(times):
            return times["ipyparallel-2"]["client"] + times["ipyparallel-2"]["controller"]

        taken = median_over(
            rounds, lambda t: beside_engines(t) / (2 * t["ipyparallel-2"]["seconds"])
        )
        per_batch = median_over(rounds, lambda t: beside_engines(t) / t["ipyparallel-2"]["tasks"])
        print(
            f"ipyparallel-2        client and controller CPU {1000 * per_batch:.1f} ms a batch,"
            f" {taken:.3f} of the two cores' wall time"
        )


def print_other_goals(rounds, chosen) -> None:
    """The seed workload's goals: protection's and the journal's costs, 2 engines' speedup."""
    for numerator, denominator, what, goal in (
        ("ipyparallel-2", "ipyparallel-2-open", "protection on / off", "<= 1.03"),
        ("ipyparallel-2-journal", "ipyparallel-2", "fit journal on / off", "no measurable cost"),
    ):
        if {numerator, denominator} <= chosen:
            wall, cpu = (_ratio(rounds, numerator, denominator, f) for f in ("seconds", "cpu"))
            print(f"{what}, 2 engines, wall: {wall:.3f} (goal {goal}); CPU: {cpu:.3f}")
    if {"ipyparallel-2", "ipyparallel-2-open"} <= chosen:
        start = median_over(
            rounds, lambda t: t["ipyparallel-2"]["start"] - t["ipyparallel-2-open"]["start"]
        )
        print(f"start time, protected minus open:         {start:+.2f} s")
    if {"ipyparallel-1", "ipyparallel-2"} <= chosen:
        speedup = _ratio(rounds, "ipyparallel-1", "ipyparallel-2")
        print(f"speedup ipyparallel 2 engines / 1 engine: {speedup:.2f} (goal >= 1.9)")
        start = median_over(rounds, lambda times: times["ipyparallel-2"]["start"])
        print(f"cluster start, 2 local engines:           {start:.2f} s (goal <= 3 s)")
    if {"ipyparallel-2", "loky-2"} <= chosen:
        versus_loky = _ratio(rounds, "ipyparallel-2", "loky-2")
        print(f"wall ratio ipyparallel-2 / loky-2:        {versus_loky:.3f} (goal <= 1.03)")


if __name__ == "__main__":
    main()
