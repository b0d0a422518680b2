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


def test_the_search_bench_tunes_the_cluster_it_starts(tmp_path, monkeypatch):
    """--batch-seconds and --controller-args reach the backend and the controller's command."""
    from evosweep.engines import backend, cluster

    sys.path.insert(0, str(BENCH))
    try:
        import search as search_bench
    finally:
        sys.path.remove(str(BENCH))
    # tune() replaces both for the bench's process; the test puts them back.
    monkeypatch.setattr(cluster, "_cluster_settings", cluster._cluster_settings)
    monkeypatch.setattr(backend._ViewBackend, "MIN_IDEAL_BATCH_DURATION", 1.0)
    search_bench.tune(0.5, ["--TaskScheduler.hwm=2"])
    _, controller_args, *_ = cluster._cluster_settings(tmp_path, {}, 2, 1, False, False, 30, ())
    assert controller_args[-1] == "--TaskScheduler.hwm=2"
    assert "--IPController.db_class=NoDB" in controller_args
    assert backend._ViewBackend.MIN_IDEAL_BATCH_DURATION == 0.5
