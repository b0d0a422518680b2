"""Dry runs (`snakemake -n`) measured side by side, wall time and CPU.

Goals: the no-op dry run of the finished default pipeline costs at most 1.5x that of a one-rule
Snakefile; the finished 100-model config of tests/helpers/many_models.py at most 3x
the finished default pipeline. Also printed: the first dry run before anything ran
(its config checks included) of the 100-model config against the default pipeline's.

Every workflow is a scratch copy. A finished one holds empty placeholders of its outputs,
recorded by `snakemake --touch --forceall`: Snakemake then keeps the same metadata (code,
params, inputs of every job) a real run leaves, so its dry run plans as much, without the hours
the default pipeline's fits would take.

    python bench/dryrun.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.many_models import many_models_config  # noqa: E402
from helpers.workflow_runner import copy_workflow, write_config  # noqa: E402
from rounds import interleaved_rounds, median_over  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
ONE_RULE = """
rule one:
    output:
        "done.txt",
    shell:
        "touch {output}"
"""
# The directory() outputs of the rules, as patterns of the paths --summary lists.
DIRECTORY_OUTPUTS = [
    re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(match)))
    for smk in (REPO / "rules").glob("*.smk")
    for match in re.findall(r'directory\("([^"]+)"\)', smk.read_text())
]
# Targets first: `--quiet` takes optional values and would swallow them.
CONFIG = ["--configfile", "config.yaml"]
DRY_RUN = ["all", "-n", "--quiet", *CONFIG]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed in {cwd}: {' '.join(command)}\n{result.stderr[-3000:]}")
    return result


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run(command, cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def workflow_copy(root: Path, config: dict) -> Path:
    root.mkdir()
    copy_workflow(root)
    write_config(root, config)
    return root


def finish_with_placeholders(workdir: Path) -> None:
    """Empty files for every output the DAG names, then `--touch --forceall` records them."""
    summary = run([SNAKEMAKE, "all", "--summary", *CONFIG], workdir).stdout
    outputs = [line.split("\t")[0] for line in summary.splitlines()[1:] if line.strip()]
    for output in outputs:
        path = workdir / output
        if any(pattern.fullmatch(output) for pattern in DIRECTORY_OUTPUTS):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    run([SNAKEMAKE, "all", "--touch", "--forceall", "--cores", "1", *CONFIG], workdir)
    check = run([SNAKEMAKE, "all", "-n", *CONFIG], workdir)
    if "Nothing to be done" not in check.stdout + check.stderr:
        sys.exit(f"{workdir}: still something to do after placing every output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    default_config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        one_rule = scratch / "one-rule"
        one_rule.mkdir()
        (one_rule / "Snakefile").write_text(ONE_RULE)
        (one_rule / "done.txt").touch()
        workdirs = {
            "default, finished": workflow_copy(scratch / "default-finished", default_config),
            "100 models, finished": workflow_copy(scratch / "many-finished", many_models_config()),
            "default, before any run": workflow_copy(scratch / "default-new", default_config),
            "100 models, before any run": workflow_copy(scratch / "many-new", many_models_config()),
        }
        for name, workdir in workdirs.items():
            if name.endswith("finished"):
                finish_with_placeholders(workdir)

        def measure(name: str) -> tuple[float, float]:
            if name == "one-rule":
                return timed([SNAKEMAKE, "one", "-n", "--quiet"], one_rule)
            workdir = workdirs[name]
            if name.endswith("before any run"):
                shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
            return timed([SNAKEMAKE, *DRY_RUN], workdir)

        variants = ["one-rule", *workdirs]
        interleaved_rounds(variants, measure, 1)  # warm the file cache
        results = interleaved_rounds(variants, measure, rounds)
    report(results, rounds)


def report(results: list[dict], rounds: int) -> None:
    print(
        f"dry runs (snakemake -n), medians of {rounds} interleaved rounds, {os.cpu_count()} cores"
    )
    print(f"  {'workflow':28} {'wall s':>7} {'CPU s':>7}")
    for name in results[0]:
        wall = median_over(results, lambda r, name=name: r[name][0])
        cpu = median_over(results, lambda r, name=name: r[name][1])
        print(f"  {name:28} {wall:7.2f} {cpu:7.2f}")
    ratios = [
        ("default finished / one-rule", "default, finished", "one-rule", 1.5),
        ("100 models / default, finished", "100 models, finished", "default, finished", 3.0),
        (
            "100 models / default, before any run",
            "100 models, before any run",
            "default, before any run",
            None,
        ),
    ]
    print(f"  {'ratio (within each round)':40} {'wall':>6} {'CPU':>6}  goal")
    for label, top, bottom, goal in ratios:
        wall = median_over(results, lambda r, t=top, b=bottom: r[t][0] / r[b][0])
        cpu = median_over(results, lambda r, t=top, b=bottom: r[t][1] / r[b][1])
        verdict = "" if goal is None else f"<= {goal}x {'OK' if wall <= goal else 'MISSED'}"
        print(f"  {label:40} {wall:5.2f}x {cpu:5.2f}x  {verdict}")


if __name__ == "__main__":
    main()
