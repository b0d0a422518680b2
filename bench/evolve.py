"""Evolution speed and quality, side by side in one run.

1. Feature-selection fitness (3-fold CV of an RBF SVC on digits, the expensive kind): 6 batches
   of 40 feature masks, one after the other as generations come, evaluated serially, on 2 SCOOP
   workers and on multiprocessing.Pool(2), all through the same chunked dispatch. This host is
   noisy, so the backends run in 5 interleaved rounds (bench/rounds.py) and the medians of
   the ratios taken within each round are reported; Pool runs twice per round, as a control
   of the noise. SCOOP runs under scoop_launcher with CURVE on every socket; `--curve compare`
   adds the same launcher without CURVE to each round, for what CURVE costs (goal <= 3 %).
   Goals: SCOOP >= 1.8x serial, SCOOP wall <= 1.05x Pool's.
2. Rastrigin CMA-ES (the default problem: N=50, lambda=1000, 250 generations): serial
   process vs SCOOP with 2 workers vs serial again (the control, for the noise floor), 5
   interleaved rounds, median ratios. Goal: SCOOP / serial <= 1.0 (cheap evaluations stay in
   the master, so SCOOP costs only its start-up and shutdown).
3. Evolutionary vs grid search of svc_evolutionary / svc_rbf_digits: best CV score and fits.
   Goal: >= 99 % of the grid's best score with <= 25 % of its fits. The grid's figures come
   from results/search/svc_rbf_digits/summary.json (`make run`); the GA runs here.

    python bench/evolve.py [--results results] [--generations 250] [--only fitness|cma|search]
                           [--curve on|compare]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from evosweep import search  # noqa: E402
from evosweep.evolve import stage  # noqa: E402
from evosweep.evolve.parallel import PROBE_GENOMES, ChunkedMap  # noqa: E402
from evosweep.evolve.spec import objective_spec  # noqa: E402
from evosweep.models import Model  # noqa: E402
from rounds import interleaved_rounds, median_over  # noqa: E402

SVC = {"estimator": "sklearn.svm.SVC", "params": {"kernel": "rbf", "shrinking": False}}
BEST_PARAMS = {"C": 10.0, "gamma": 0.001}  # about the grid's optimum on digits
MASKS, BATCHES, REPEATS = 40, 6, 5
# Pool runs twice per round: the ratio of the two shows how far a ratio moves by noise alone.
FITNESS_VARIANTS = ("pool-2", "serial", "scoop-2", "pool-2 control")
# The same launcher with CURVE off (`--curve compare`): what authentication costs.
NO_CURVE = "scoop-2 no-curve"
# The warm-up batch outnumbers the master's cost probe, so every worker gets tasks and pays its
# one-off costs (imports, reading the data) before the timing starts.
WARMUP_MASKS = PROBE_GENOMES + 8  # 8 one-fit tasks for 2 workers
# Both CMA-ES modes run the same generation loop in the master (Rastrigin batches are too cheap
# to ship), so the ratio measures SCOOP's own costs: its launch (scoop_launcher, then the broker,
# then the origin) and its shutdown. The default problem's 250 generations keep that in proportion; a second serial
# run in the same rounds shows how far the ratio moves by noise alone.
CMA_REPEATS = 5
CMA_VARIANTS = ("serial", "scoop", "serial control")
PARTS = ("fitness", "cma", "search")


def digits_split(directory: Path) -> tuple[Path, Path]:
    """The data stage's digits split (test_size 0.3, stratified, seed 42)."""
    from evosweep.data import prepare, write

    spec = {"source": "sklearn:digits", "test_size": 0.3, "stratify": True}
    train, test, summary = prepare("digits", spec, 42)
    paths = (directory / "train.parquet", directory / "test.parquet")
    write(train, test, summary, *paths, directory / "summary.json")
    return paths


def feature_masks(count: int, size: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(0, 1) for _ in range(size)] for _ in range(count)]


def objective(train: Path) -> dict:
    """The spec the evolve stage sends its workers for feature selection with the SVC at
    BEST_PARAMS, 3 folds."""
    model = Model.from_config(
        "svc",
        {
            "dataset": "digits",
            "estimator": SVC["estimator"],
            "params": {**SVC["params"], **BEST_PARAMS},
            "space": {"C": [BEST_PARAMS["C"]]},
            "scoring": "accuracy",
        },
    )
    problem = {"objective": "feature_selection", "cv": 3}
    return objective_spec(problem, 42, model, train)


def timed_batch(mode: str, workers: int, spec: dict) -> tuple[float, list]:
    """Warm the workers up (imports, data), then time BATCHES batches of MASKS masks, one
    after the other as generations come."""
    mapper = ChunkedMap(mode, workers)
    try:
        mapper(spec, feature_masks(WARMUP_MASKS, 64, seed=1))
        started = time.perf_counter()
        results = []
        for batch in range(BATCHES):
            results += mapper(spec, feature_masks(MASKS, 64, seed=2 + batch))
        return time.perf_counter() - started, results
    finally:
        mapper.close()


def scoop_part(train: Path, out: Path) -> None:
    """Runs in the SCOOP origin of 2 workers (SCOOP imports this file on every worker)."""
    seconds, results = timed_batch("scoop", 2, objective(train))
    out.write_text(json.dumps({"seconds": seconds, "results": results}))


def timed_scoop_batch(train: Path, scratch: Path, curve: bool = True) -> tuple[float, list, float]:
    out = scratch / "scoop.json"
    launcher = [sys.executable, "-m", "evosweep.evolve.scoop_launcher", "-n", "2"]
    if not curve:
        launcher.append("--no-curve")
    started = time.perf_counter()
    subprocess.run(
        [*launcher, "--", __file__, "--scoop-part", str(train), str(out)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    process_seconds = time.perf_counter() - started
    scoop = json.loads(out.read_text())
    return scoop["seconds"], [tuple(r) for r in scoop["results"]], process_seconds


def fitness_benchmark(train: Path, scratch: Path, variants=FITNESS_VARIANTS) -> dict:
    """Backends in REPEATS interleaved rounds (bench/rounds.py): medians of each figure and of
    each ratio taken within a round."""
    spec = objective(train)

    def measure(name):
        if name.startswith("scoop-2"):
            curve = name != NO_CURVE
            seconds, found, process_seconds = timed_scoop_batch(train, scratch, curve)
            return {"seconds": seconds, "process": process_seconds, "results": found}
        seconds, found = timed_batch(name.split("-")[0], 2, spec)
        return {"seconds": seconds, "results": [tuple(r) for r in found]}

    rounds = interleaved_rounds(variants, measure, REPEATS)
    for times in rounds:
        assert all(times[name]["results"] == times["serial"]["results"] for name in times)
    figures = {
        name: median_over(rounds, lambda times, name=name: times[name]["seconds"])
        for name in rounds[0]
    }
    figures["scoop-2 process"] = median_over(rounds, lambda times: times["scoop-2"]["process"])
    figures["speedup"] = median_over(
        rounds, lambda times: times["serial"]["seconds"] / times["scoop-2"]["seconds"]
    )
    figures["versus_pool"] = median_over(
        rounds, lambda times: times["scoop-2"]["seconds"] / times["pool-2"]["seconds"]
    )
    figures["pool_control"] = median_over(
        rounds, lambda times: times["pool-2 control"]["seconds"] / times["pool-2"]["seconds"]
    )
    if NO_CURVE in variants:
        for key in ("seconds", "process"):
            figures[f"curve_{key}"] = median_over(
                rounds, lambda times, key=key: times["scoop-2"][key] / times[NO_CURVE][key]
            )
        figures[f"{NO_CURVE} process"] = median_over(
            rounds, lambda times: times[NO_CURVE]["process"]
        )
    return figures


def cma_benchmark(generations: int, scratch: Path) -> dict:
    """Serial, SCOOP-2 and serial again (a control: what the same code scores against itself
    on this host, i.e. the noise floor of the ratio) in CMA_REPEATS interleaved rounds."""
    spec = {
        "algorithm": "cma-es",
        "objective": "rastrigin",
        "dimensions": 50,
        "centroid": 5.0,
        "sigma": 5.0,
        "lambda": 1000,
        "generations": generations,
        "checkpoint_every": 10 * generations,
        "chunksize": None,
    }

    def measure(variant, problem=spec):
        mode = variant.split()[0]
        out = scratch / f"cma-{mode}"
        started = time.perf_counter()
        best = stage.run_problem("cma", problem, 42, 2, out, out / "ck.pkl", dpi=50, map_mode=mode)
        return {
            "process": time.perf_counter() - started,
            "loop": best["wall_seconds"],
            "best": best["fitness"]["rastrigin"],
        }

    # Untimed warm-up: the first run of this process imports matplotlib for the plots.
    for mode in ("serial", "scoop"):
        measure(mode, {**spec, "generations": 2})
    rounds = interleaved_rounds(CMA_VARIANTS, measure, CMA_REPEATS)
    assert all(len({r[variant]["best"] for variant in CMA_VARIANTS}) == 1 for r in rounds)
    median = {
        variant: {
            key: median_over(rounds, lambda r, variant=variant, key=key: r[variant][key])
            for key in ("process", "loop")
        }
        for variant in CMA_VARIANTS
    }
    for variant in CMA_VARIANTS[1:]:
        for key in ("loop", "process"):
            ratios = [r[variant][key] / r["serial"][key] for r in rounds]
            median[variant][f"{key}_ratio"] = statistics.median(ratios)
            median[variant][f"{key}_range"] = (min(ratios), max(ratios))
    median["best"] = rounds[0]["serial"]["best"]
    return median


def search_benchmark(results: Path, train: Path, test: Path, scratch: Path) -> dict:
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    from evosweep.config import validate

    validate(config)
    spec = config["search"]["models"]["svc_evolutionary"]
    evolutionary = search.run(
        Model.from_config("svc_evolutionary", spec),
        config["seed"],
        train,
        test,
        scratch / "svc_evolutionary",
        2,
        checkpoint=scratch / "svc_evolutionary.pkl",
    )
    grid_path = results / "search" / "svc_rbf_digits" / "summary.json"
    grid = json.loads(grid_path.read_text()) if grid_path.exists() else None
    return {"evolutionary": evolutionary, "grid": grid, "grid_path": grid_path}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--generations", type=int, default=250)
    parser.add_argument("--only", choices=PARTS, help="run one part only")
    parser.add_argument(
        "--curve",
        choices=("on", "compare"),
        default="on",
        help="compare: also run SCOOP without CURVE in each fitness round (what CURVE costs)",
    )
    parser.add_argument("--scoop-part", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scoop_part:
        scoop_part(*args.scoop_part)
        return
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="evosweep-bench-") as tmp:
        scratch = Path(tmp)
        train, test = digits_split(scratch)
        parts = [args.only] if args.only else PARTS
        variants = FITNESS_VARIANTS + ((NO_CURVE,) if args.curve == "compare" else ())
        if "fitness" in parts:
            fitness_report(fitness_benchmark(train, scratch, variants), variants)
        if "cma" in parts:
            cma_report(cma_benchmark(args.generations, scratch), args.generations)
        if "search" in parts:
            search_report(search_benchmark(args.results, train, test, scratch))


def fitness_report(fitness: dict, variants) -> None:
    print(
        f"feature-selection fitness, {BATCHES} batches of {MASKS} masks (3-fold CV SVC on "
        f"digits), median of {REPEATS} interleaved rounds:"
    )
    processes = ["scoop-2 process"] + ([f"{NO_CURVE} process"] if NO_CURVE in variants else [])
    for name in (*variants, *processes):
        print(f"  {name:16s} {fitness[name]:7.2f} s")
    print(f"  speed-up SCOOP-2 over serial: {fitness['speedup']:.2f}x   (goal >= 1.8)")
    print(f"  SCOOP-2 wall / Pool(2) wall: {fitness['versus_pool']:.3f}    (goal <= 1.05)")
    print(f"  control, Pool(2) / Pool(2): {fitness['pool_control']:.3f}    (noise)")
    if NO_CURVE in variants:
        print(
            f"  CURVE on / off, same launcher: batches {fitness['curve_seconds']:.3f}, "
            f"process {fitness['curve_process']:.3f}    (goal <= 1.03)"
        )


def cma_report(cma: dict, generations: int) -> None:
    print(
        f"Rastrigin CMA-ES, N=50, lambda=1000, {generations} generations, median of "
        f"{CMA_REPEATS} interleaved rounds (best {cma['best']:.4f} in every run):"
    )
    for variant in CMA_VARIANTS:
        print(
            f"  {variant:14s} process {cma[variant]['process']:6.2f} s, generation loop "
            f"{cma[variant]['loop']:6.2f} s"
        )
    for variant, label in (("scoop", "SCOOP-2 / serial"), ("serial control", "control")):
        figures = cma[variant]
        print(
            f"  {label:16s}: loop {figures['loop_ratio']:.3f} (rounds "
            f"{figures['loop_range'][0]:.2f}-{figures['loop_range'][1]:.2f}), process "
            f"{figures['process_ratio']:.3f} (rounds {figures['process_range'][0]:.2f}-"
            f"{figures['process_range'][1]:.2f})"
            + ("  (goal <= 1.0)" if variant == "scoop" else "  (serial / serial: noise)")
        )


def search_report(search: dict) -> None:
    evolutionary, grid = search["evolutionary"], search["grid"]
    print("evolutionary vs grid search (svc_evolutionary vs svc_rbf_digits):")
    print(
        f"  evolutionary: best CV {evolutionary['best_score']:.4f}, "
        f"{evolutionary['n_fits']} fits, {evolutionary['wall_seconds']:.1f} s"
    )
    if grid is None:
        print(f"  grid: {search['grid_path']} missing (run `make run` first)")
        return
    print(
        f"  grid:         best CV {grid['best_score']:.4f}, {grid['n_fits']} fits, "
        f"{grid['wall_seconds']:.1f} s"
    )
    score_ratio = evolutionary["best_score"] / grid["best_score"]
    fit_ratio = evolutionary["n_fits"] / grid["n_fits"]
    print(
        f"  score ratio {score_ratio:.4f} (goal >= 0.99), fits ratio {fit_ratio:.3f} (goal <= 0.25)"
    )


if __name__ == "__main__":
    main()
