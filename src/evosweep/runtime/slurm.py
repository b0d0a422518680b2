"""The questions asked of Slurm (scontrol, squeue) by the run directories and the addresses.

Snakemake's slurm-jobstep plugin strips SLURM_NTASKS and SLURM_NODELIST from a rule's
environment, so what the job is made of is read from scontrol, not from the environment.
"""

from __future__ import annotations

import os
import socket
import subprocess


def scontrol(*args: str) -> str:
    return subprocess.run(
        ["scontrol", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def fields(line: str) -> dict[str, str]:
    """`Key=Value Key=Value ...` (scontrol's one-line output) as a dict."""
    return dict(item.split("=", 1) for item in line.split() if "=" in item)


def node_name() -> str:
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def job_gone(job: str) -> bool:
    """True only when Slurm says `job` is no longer known or running."""
    try:
        result = subprocess.run(
            ["squeue", "--noheader", "--jobs", job, "--format", "%i"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if result.returncode == 0:
        return not result.stdout.strip()
    return "Invalid job id" in result.stderr
