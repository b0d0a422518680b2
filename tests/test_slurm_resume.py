"""A search job that outlives its time limit on the local Slurm cluster: the first attempt is
killed at its 1-minute limit (TIMEOUT) with its finished fits journalled, Snakemake's retry
(2 minutes) resumes from the journal and completes, and the outputs equal an uninterrupted run's.

The fits wait a fixed time (slow_fits.SlowSVC): 162 fits of at least 1.25 s on 2 engines are
over 100 s of work on any host, so no first attempt can finish within its minute (nor within
the half minute Slurm may take to notice the limit), and the retry has ample time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from helpers.slurm_cluster import jobs_by_name, run_on_slurm, wait_for_sacct
from helpers.workflow_runner import snakemake

pytestmark = pytest.mark.slurm

TESTS = Path(__file__).resolve().parent
MODEL = "slow_svc"
CONFIG = {
    "seed": 42,
    "datasets": {"iris": {"source": "sklearn:iris", "test_size": 0.3}},
    "search": {
        "engines": None,  # the job's tasks (2 in profiles/slurm)
        "models": {
            MODEL: {
                "dataset": "iris",
                "estimator": "helpers.slow_fits.SlowSVC",
                "space": {"C": {"logspace": [-2, 2, 9]}, "gamma": {"logspace": [-3, 1, 6]}},
                "cv": 3,
            }
        },
    },
}
FITS = 9 * 6 * 3
TARGET = f"results/search/{MODEL}/summary.json"
TIMINGS = ["mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"]
# One minute for the first attempt, two for the retry (profiles/slurm retries once).
RUNTIME = {"search": {"runtime": "str(attempt) + 'm'"}}
RESUMED = re.compile(r"resumed (\d+) of (\d+) fits from the journal")
PROGRESS = re.compile(r"progress: (\d+)/\d+ fits")


def _is_search(row) -> bool:
    return row["Comment"] == "rule_search" or row["Comment"].startswith("rule_search_wildcards_")


def test_search_times_out_and_the_retry_resumes_from_the_journal(
    slurm_cluster, tmp_path, monkeypatch
):
    # Snakemake, the jobs and their engines import slow_fits from tests/.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    )
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    monkeypatch.setenv("EVOSWEEP_TEST_FIT_SECONDS", "1.25")
    output, run_id = run_on_slurm(slurm_dir, CONFIG, TARGET, timeout=1200, set_resources=RUNTIME)

    jobs = wait_for_sacct(
        lambda rows: (
            sum(_is_search(r) for r in rows) >= 2
            and all(r["State"] not in ("PENDING", "RUNNING") for r in rows if _is_search(r))
        ),
        query=jobs_by_name,
        name=run_id,
    )
    attempts = sorted((r for r in jobs if _is_search(r)), key=lambda r: int(r["JobID"]))
    states = [r["State"] for r in attempts]
    assert states == ["TIMEOUT", "COMPLETED"], (states, output[-3000:])
    assert [r["Timelimit"] for r in attempts] == ["00:01:00", "00:02:00"], attempts

    # The first attempt stopped on the time limit's SIGTERM with its fits journalled ...
    first_log = _slurm_log(slurm_dir, attempts[0]["JobID"])
    assert "stopped by SIGTERM" in first_log, first_log[-3000:]
    done_before = max(int(n) for n in PROGRESS.findall(first_log))
    # ... and the retry took every one of them from the journal and ran only the rest.
    log = (slurm_dir / "logs" / "search" / f"{MODEL}.log").read_text()
    reused, total = map(int, RESUMED.search(log).groups())
    assert total == FITS and done_before <= reused < FITS, (done_before, reused, log[-3000:])
    assert f"holds {reused} fits of an interrupted run" in log
    journal = slurm_dir / "results" / "checkpoints" / "search" / f"{MODEL}.journal"
    assert not journal.exists()  # the finished search removed it

    # The same search, uninterrupted and locally (the fits' wait changes no result).
    monkeypatch.setenv("EVOSWEEP_TEST_FIT_SECONDS", "0")
    local = dict(CONFIG, search=dict(CONFIG["search"], engines=2))
    snakemake(local_dir, local, "-c2", TARGET)
    model = Path("results/search") / MODEL
    pd.testing.assert_frame_equal(
        pd.read_csv(slurm_dir / model / "cv_results.csv").drop(columns=TIMINGS),
        pd.read_csv(local_dir / model / "cv_results.csv").drop(columns=TIMINGS),
    )
    for name in ("best_params.json", "test_scores.json"):
        assert (slurm_dir / model / name).read_text() == (local_dir / model / name).read_text()


def _slurm_log(workdir: Path, job_id: str) -> str:
    """The job's own Slurm log (the rule's stderr), kept by the profile for failed jobs too."""
    logs = list((workdir / "logs" / "slurm").rglob(f"{job_id}.log"))
    assert logs, f"no Slurm log for job {job_id} under {workdir / 'logs' / 'slurm'}"
    return logs[0].read_text()
