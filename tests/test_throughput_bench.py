"""bench/throughput.py on 2 local engines and a few hundred no-op tasks: one JSON line per task
count, every task accounted for, and CPU figures for the controller, the client and engines."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "throughput.py"


def test_one_line_per_task_count_with_batches_and_cpu_per_task():
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--engines", "2", "--tasks", "50", "300"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,  # a hang guard, not a speed check
    )
    assert run.returncode == 0, run.stderr[-3000:]
    points = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(p["where"], p["engines"], p["n_jobs"], p["tasks"]) for p in points] == [
        ("local", 2, 2, 50),
        ("local", 2, 2, 300),
    ]
    for point in points:
        assert 1 <= point["batches"] <= point["tasks"]
        assert point["mean_batch"] == round(point["tasks"] / point["batches"], 1)
        assert point["tasks_per_s"] > 0 and point["seconds"] > 0
        assert point["controller_ms_per_task"] > 0
        assert point["client_ms_per_task"] > 0
        assert point["engines_ms_per_task"] > 0
        assert point["controller_idle_cpu_per_s"] >= 0
        assert point["controller_ms_per_batch"] >= 0


def test_a_bad_batch_size_is_a_one_line_error():
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--engines", "2", "--batch-size", "many"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "--batch-size" in run.stderr
