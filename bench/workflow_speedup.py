"""End to end through the workflow: the 500-fit SVC grid as a Snakemake job, 2 engines vs 1.

The search job of bench/search.py's SVC grid (10 x 10 candidates, 5 folds, on digits) run by
`snakemake --cores 2`, with `search: engines:` 1 and 2, timed as the whole command: Snakemake's
start, the script, the engines' start and stop, the fits, the refit, outputs and plots. Prints
the median over interleaved rounds (bench/rounds.py) of the ratio 1-engine / 2-engine wall time
(goal >= 1.7), and each job's time outside its fits (wall less the fits the job's log reports).

With `--baseline REV` the same jobs also run on the workflow of git revision REV (e.g. main),
side by side in the same rounds: each variant runs from its own copy of the workflow, with its
own `src` first on PYTHONPATH (the script and the engines import evosweep from there).

    python bench/workflow_speedup.py [--rounds 3] [--baseline main]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.workflow_runner import WORKFLOW_PARTS, copy_workflow, write_config  # noqa: E402
from job_overhead import fit_seconds, warn_of_an_unreachable_slurm  # noqa: E402
from rounds import interleaved_rounds, median_over  # noqa: E402
from search import SPEC  # noqa: E402  (bench/search.py's 500-fit grid)

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
GOAL = 1.7
TARGET = "results/search/svc/summary.json"


def workflow_of_revision(revision: str, root: Path) -> Path:
    """The workflow's files at git `revision`, extracted into `root`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, *WORKFLOW_PARTS, "config/schema.yaml"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    return root


def prepare(workdir: Path, engines: int) -> list[str]:
    """Write the config of `engines` engines, make the data; the job's command."""
    config = {
        "seed": 42,
        "datasets": {"digits": {"source": "sklearn:digits", "test_size": 0.3, "stratify": True}},
        "search": {"engines": engines, "models": {"svc": SPEC}},
    }
    config_path = write_config(workdir, config)
    job = [SNAKEMAKE, TARGET, "--cores", "2", "--configfile", str(config_path)]
    run([*job[:1], "results/data/digits/train.parquet", *job[2:]], workdir)  # untimed
    return [*job, "--forcerun", "search"]


def run(command: list[str], workdir: Path) -> float:
    """Wall seconds of `command` in `workdir`, whose own `src` comes first; exits on failure."""
    env = dict(os.environ, PYTHONPATH=str(workdir / "src"))
    started = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"failed in {workdir}: {' '.join(command)}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="also measure the workflow of this git revision")
    args = parser.parse_args()
    warn_of_an_unreachable_slurm()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        sources = {"this": lambda root: copy_workflow(root)}
        if args.baseline:
            sources[args.baseline] = lambda root: workflow_of_revision(args.baseline, root)
        jobs = {}
        for label, make_copy in sources.items():
            for engines in (1, 2):
                workdir = scratch / f"{label.replace('/', '_')}-{engines}"
                workdir.mkdir()
                make_copy(workdir)
                jobs[(label, engines)] = (workdir, prepare(workdir, engines))

        def measure(key):
            workdir, command = jobs[key]
            wall = run(command, workdir)
            fits = fit_seconds((workdir / "logs" / "search" / "svc.log").read_text())
            print(
                f"  {key[0]:>12} {key[1]} engine(s): {wall:6.1f} s, fits {fits:6.1f} s", flush=True
            )
            return wall, fits

        results = interleaved_rounds(list(jobs), measure, args.rounds)
    report(results, list(sources), args.rounds)


def report(results: list[dict], labels: list[str], rounds: int) -> None:
    print(f"the 500-fit SVC grid as a Snakemake job, medians of {rounds} interleaved rounds")
    print(f"  {'workflow':>12} {'engines':>7} {'wall s':>7} {'fits s':>7} {'outside s':>9}")
    for label in labels:
        for engines in (1, 2):
            key = (label, engines)
            wall = median_over(results, lambda r, k=key: r[k][0])
            fits = median_over(results, lambda r, k=key: r[k][1])
            outside = median_over(results, lambda r, k=key: r[k][0] - r[k][1])
            print(f"  {label:>12} {engines:7d} {wall:7.1f} {fits:7.1f} {outside:9.1f}")
    for label in labels:
        ratio = median_over(results, lambda r, x=label: r[(x, 1)][0] / r[(x, 2)][0])
        fits = median_over(results, lambda r, x=label: r[(x, 1)][1] / r[(x, 2)][1])
        print(
            f"{label}: 2 engines vs 1, whole job {ratio:.2f} (goal >= {GOAL}), "
            f"fits alone {fits:.2f}"
        )


if __name__ == "__main__":
    main()
