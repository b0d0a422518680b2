"""Run a benchmark's measuring part as one sbatch job on the test cluster and read back the JSON
lines it prints (bench/registration.py, bench/throughput.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ACCOUNT = os.environ.get("EVOSWEEP_SLURM_ACCOUNT", "evosweep")


def json_lines_of_job(command: list[str], nodes: int, tasks: int) -> list[dict]:
    """`command` in an sbatch job of `tasks` tasks over `nodes` nodes (waited for); the lines of
    its output that are JSON objects. A failed job ends the benchmark with its output's tail."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "job.out"
        job = subprocess.run(
            ["sbatch", "--parsable", "--wait", "-A", ACCOUNT, "-p", "debug"]
            + [f"--nodes={nodes}", f"--ntasks={tasks}", "--cpus-per-task=1"]
            + ["-t", "60", "-o", str(output), "--wrap", " ".join(command)],
            capture_output=True,
            text=True,
            check=False,
        )
        text = output.read_text() if output.exists() else ""
    if job.returncode != 0:
        sys.exit(f"the sbatch job failed ({job.returncode}): {job.stderr}\n{text[-3000:]}")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
