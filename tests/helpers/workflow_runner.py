"""Run the real workflow on a small config in a scratch directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


WORKFLOW_PARTS = ["Snakefile", "rules", "scripts", "src", "report", "envs", "profiles"]


def copy_workflow(root: Path, with_makefile: bool = False) -> Path:
    """A private copy of the workflow in `root` (so a test may edit a script), with the config
    schema but not config/config.yaml: Snakemake merges --configfile into the Snakefile's
    `configfile:` when that file exists, and a test config must stand alone."""
    for part in WORKFLOW_PARTS + (["Makefile"] if with_makefile else []):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, root / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / part)
    (root / "config").mkdir()
    shutil.copy(REPO / "config" / "schema.yaml", root / "config" / "schema.yaml")
    return root


def write_config(workdir: Path, config: dict) -> Path:
    path = Path(workdir) / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(
    workdir: Path,
    config: dict | None,
    *args: str,
    check: bool = True,
    timeout=900,
    program: list[str] | None = None,
):
    """`snakemake -s REPO/Snakefile -d WORKDIR --configfile WORKDIR/config.yaml ARGS`.

    `--configfile` replaces the default config's top-level keys, so a test config never
    inherits the full-size default datasets or models. `program`: another command that takes
    Snakemake's arguments (slurm_snakemake.COMMAND).
    """
    workdir = Path(workdir)
    command = [*(program or [SNAKEMAKE]), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    if config is not None:  # last: `--configfile` takes every following word as a file
        command += ["--configfile", str(write_config(workdir, config))]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}): {' '.join(command)}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


def evosweep_error_lines(result) -> list[str]:
    """The user-facing error lines (the Snakefile exits with one line starting 'evosweep:')."""
    return [line for line in result.stderr.splitlines() if line.startswith("evosweep:")]


def planned_jobs(result) -> set[str]:
    """The jobs a dry run (`-n`) would run, as 'rule' or 'rule[key=value,...]', without `all`.

    Read from the job blocks Snakemake prints ('rule NAME:' followed by indented details,
    among them 'wildcards: a=1, b=2').
    """
    jobs, rule, wildcards = set(), None, ""
    for line in (result.stdout + "\n" + result.stderr).splitlines() + ["<end>"]:
        stripped = line.strip()
        block_start = (line.startswith("rule ") or line.startswith("localrule ")) and line.endswith(
            ":"
        )
        if block_start or not line.startswith(" "):
            if rule and rule != "all":
                jobs.add(f"{rule}[{wildcards}]" if wildcards else rule)
            rule, wildcards = None, ""
        if block_start:
            rule = line.split()[1].rstrip(":")
        elif rule and stripped.startswith("wildcards:"):
            wildcards = stripped.removeprefix("wildcards:").strip().replace(" ", "")
    return jobs


def nothing_to_do(result) -> bool:
    return "Nothing to be done" in result.stdout + result.stderr
