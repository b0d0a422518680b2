"""Every benchmark still starts against today's code: its imports resolve and its --help
answers (a moved module otherwise shows only when someone runs `make bench`), and the imports
bench/job_overhead.py times as a search job's are the ones that exist."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(path.name for path in BENCH.glob("*.py") if "__main__" in path.read_text())


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_starts(script):
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout, result.stdout


def test_the_search_jobs_imports_exist():
    sys.path.insert(0, str(BENCH))
    try:
        from job_overhead import SCRIPT_IMPORTS
    finally:
        sys.path.remove(str(BENCH))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT_IMPORTS], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
