"""The fixed cost of one search job: everything outside its fits, by part, wall time and CPU.

One tiny search (a 2-candidate tree grid, 2 folds on iris: a few fits of milliseconds) run as
a Snakemake job on local engines, and beside it, in the same round, each part of its start
alone:
  snakemake start and plan  `snakemake -n` of the job: imports, the Snakefile, the DAG
  script start and imports  a Python that imports what the search script and run use, and
                            exits as a rule's script does (logs.rule_logger: no collection of
                            every object at exit); beside it the same Python exiting with that
                            collection, which shows what skipping it saves
  engine cluster            start and stop of the job's engines (evosweep.engines)
From the job's log: the fits (the engines' first fits import scikit-learn there). The rest of
the job (refit, outputs, plots, Snakemake's bookkeeping) is its wall time less the parts.

    python bench/job_overhead.py [--rounds 3] [--engines 2]
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.workflow_runner import copy_workflow, write_config  # noqa: E402
from rounds import interleaved_rounds, median_over  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
MODEL = {
    "dataset": "iris",
    "estimator": "sklearn.tree.DecisionTreeClassifier",
    "space": {"max_depth": [1, 2]},
    "cv": 2,
}
TARGET = "results/search/tiny/summary.json"
# What a search job imports: the script's modules, then what run() loads for a grid search.
SCRIPT_IMPORTS = (
    "import evosweep.allocation, evosweep.runtime.snakemake, evosweep.logs, evosweep.search; "
    "import evosweep.engines, evosweep.journal, evosweep.search.strategies; "
    "import evosweep.search.plots, evosweep.data, sklearn.tree"
)
QUICK_EXIT = "import gc; gc.freeze()"  # what rule_logger does at the end of a rule's script
ENGINES_ONLY = (
    "import sys; from evosweep.engines import engine_cluster\n"
    "with engine_cluster(int(sys.argv[1])) as engines: pass\n"
)


def warn_of_an_unreachable_slurm() -> None:
    """Say so when every Snakemake start here waits for a Slurm controller: the Slurm executor
    plugin asks `scontrol show config` as Snakemake starts, and a machine with Slurm's client
    but no controller up (this one, between the test cluster's runs) answers only after a
    timeout that a laptop (no Slurm) and a cluster's login node (a controller) never pay."""
    if shutil.which("sinfo") is None or shutil.which("scontrol") is None:
        return
    started = time.perf_counter()
    subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=120)
    seconds = time.perf_counter() - started
    if seconds > 0.5:
        print(
            f"note: `scontrol show config` took {seconds:.1f} s (no Slurm controller answers), "
            "and every snakemake start here waits as long: start the test cluster "
            "(bash tests/slurm/start-cluster.sh) to measure as on a laptop or a login node"
        )


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children); exits on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fit_seconds(log: str) -> float:
    """Wall seconds of the fits alone, from a search job's log: its fits-with-start less the
    wait for the engines (or, as logged before the engines started early, their start)."""
    total = float(re.search(r"fits in ([\d.]+) s on", log).group(1))
    waited = re.search(r"([\d.]+) s of it waiting for their start", log)
    if waited is None:
        waited = re.search(r"engine\(s\) ready in ([\d.]+) s", log)
    return total - float(waited.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", type=int, default=2)
    args = parser.parse_args()
    warn_of_an_unreachable_slurm()
    with tempfile.TemporaryDirectory() as scratch_name:
        workdir = copy_workflow(Path(scratch_name))
        config = {
            "seed": 1,
            "datasets": {"iris": {"source": "sklearn:iris", "test_size": 0.3}},
            "search": {"engines": args.engines, "models": {"tiny": MODEL}},
        }
        config_args = ["--configfile", str(write_config(workdir, config))]
        job = [SNAKEMAKE, TARGET, "--forcerun", "search", "--cores", str(args.engines)]
        timed(job + config_args, workdir)  # the data, and a warm file cache
        python = [sys.executable]
        commands = {
            "snakemake start and plan": [*job, "-n", *config_args],
            "script start and imports": [*python, "-c", SCRIPT_IMPORTS + "; " + QUICK_EXIT],
            "the same, collecting at exit": [*python, "-c", SCRIPT_IMPORTS],
            "engine cluster": [*python, "-c", ENGINES_ONLY, str(args.engines)],
            "whole job": job + config_args,
        }
        log = workdir / "logs" / "search" / "tiny.log"

        def measure(name: str) -> tuple[float, float]:
            wall, cpu = timed(commands[name], workdir if name != "engine cluster" else REPO)
            if name == "whole job":
                return wall, cpu, fit_seconds(log.read_text())
            return wall, cpu

        results = interleaved_rounds(list(commands), measure, args.rounds)
    report(results, args)


def report(results: list[dict], args) -> None:
    print(
        f"one tiny search job on {args.engines} local engines, "
        f"medians of {args.rounds} interleaved rounds"
    )
    print(f"  {'part':28} {'wall s':>7} {'CPU s':>7}")
    parts = ["snakemake start and plan", "script start and imports", "engine cluster"]
    for name in parts + ["whole job"]:
        wall = median_over(results, lambda r, n=name: r[n][0])
        cpu = median_over(results, lambda r, n=name: r[n][1])
        print(f"  {name:28} {wall:7.2f} {cpu:7.2f}")
    fits = median_over(results, lambda r: r["whole job"][2])
    rest = median_over(
        results, lambda r: r["whole job"][0] - r["whole job"][2] - sum(r[p][0] for p in parts)
    )
    saved = median_over(
        results, lambda r: r["the same, collecting at exit"][0] - r["script start and imports"][0]
    )
    print(f"  {'fits (from the job log)':28} {fits:7.2f}")
    print(f"  {'rest: refit, outputs, plots':28} {rest:7.2f}")
    fixed = median_over(results, lambda r: 1 - r["whole job"][2] / r["whole job"][0])
    print(f"  share of the job outside its fits: {fixed:.0%}")
    print(f"  the script's exit without collecting its objects saves {saved:.2f} s (wall)")


if __name__ == "__main__":
    main()
