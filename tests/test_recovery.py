"""Recovery after `kill -9`: real Snakemake and `make run` processes killed with a job in flight.

The job in flight is the data split of a large blobs dataset: it logs one line when it starts
and writes its outputs seconds later, so the tests kill on that line and then check that the
outputs are indeed missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evosweep.runtime import stalelock
from evosweep.runtime.snakemake import is_snakemake
from helpers.waiting import wait_until
from helpers.workflow_runner import REPO, SNAKEMAKE, copy_workflow, nothing_to_do, write_config

BIG_ROWS = 1_000_000
CONFIG = {
    "seed": 4,
    "datasets": {
        "iris": {"source": "sklearn:iris", "test_size": 0.2},
        "big": {"source": "blobs", "n_samples": BIG_ROWS, "n_features": 10, "centers": 3},
    },
}
IN_FLIGHT_LINE = "preparing dataset big"
LOCK_MESSAGE = "Directory cannot be locked"


def _start(command: list[str], workdir: Path) -> subprocess.Popen:
    """Start `command` as the leader of its own process group (as a shell would)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    with open(workdir / "killed.out", "w") as output:  # the child keeps its own copy
        return subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _run(command: list[str], workdir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def _kill_group_when_in_flight(process: subprocess.Popen, workdir: Path) -> None:
    """SIGKILL the whole process group once the big split has logged its first line."""
    log = workdir / "logs" / "data" / "big.log"

    def in_flight() -> bool:
        return IN_FLIGHT_LINE in (log.read_text() if log.exists() else "")

    wait_until(lambda: in_flight() or process.poll() is not None, 600, 0.02)  # 600: a hang guard
    if not in_flight():
        output = (workdir / "killed.out").read_text()
        raise AssertionError(f"the run ended before the job started:\n{output[-4000:]}")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # The kill caught the job in flight, and left the state a power loss would.
    assert not (workdir / "results/data/big/summary.json").exists()
    assert stalelock.has_lock(workdir)
    assert list((workdir / ".snakemake" / "incomplete").iterdir())
    # A kill in the middle of writing leaves a truncated file: the rerun must not trust it.
    partial = workdir / "results/data/big/train.parquet"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"PAR1 truncated by kill -9")


def _check_outputs(workdir: Path) -> None:
    summary = json.loads((workdir / "results/data/big/summary.json").read_text())
    assert summary["rows"] == BIG_ROWS
    train = pd.read_parquet(workdir / "results/data/big/train.parquet")
    test = pd.read_parquet(workdir / "results/data/big/test.parquet")
    assert (len(train), len(test)) == (summary["train_rows"], summary["test_rows"])
    assert len(train) + len(test) == BIG_ROWS
    assert (workdir / "results/data/iris/summary.json").is_file()
    assert (workdir / "results/resources/resources.csv").is_file()
    assert not stalelock.has_lock(workdir)
    assert not list((workdir / ".snakemake" / "incomplete").iterdir())


def test_plain_snakemake_after_kill_needs_only_unlock(tmp_path):
    """Snakemake 9.27 keeps the lock of a killed run: the rerun stops and names --unlock.
    After `snakemake --unlock`, the same command completes: the workflow profile's
    rerun-incomplete redoes the interrupted job instead of stopping on its partial output."""
    config = write_config(tmp_path, CONFIG)
    base = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
    command = [*base, "--cores", "1", "--configfile", str(config)]
    _kill_group_when_in_flight(_start(command, tmp_path), tmp_path)

    locked = _run(command, tmp_path)
    assert locked.returncode != 0
    assert LOCK_MESSAGE in locked.stderr and "--unlock" in locked.stderr, locked.stderr[-3000:]

    unlock = _run([*base, "--unlock", "--configfile", str(config)], tmp_path)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    rerun = _run(command, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-6000:]
    assert "IncompleteFilesException" not in rerun.stderr
    _check_outputs(tmp_path)
    again = _run([*command[:-2], "-n", "--configfile", str(config)], tmp_path)
    assert nothing_to_do(again), again.stdout + again.stderr


@pytest.fixture
def workflow_copy(tmp_path):
    """The workflow and Makefile in a scratch directory sharing the repository's .venv."""
    venv = REPO / ".venv"
    if not (venv / ".installed").exists():
        pytest.skip("needs the repository's .venv (make .venv/.installed)")
    copy_workflow(tmp_path, with_makefile=True)
    (tmp_path / ".venv").symlink_to(venv)
    return tmp_path


def test_make_run_recovers_by_itself_after_kill(workflow_copy):
    root = workflow_copy
    write_config(root, CONFIG)
    # -o: never rebuild the shared virtual environment from the copied pins.
    command = ["make", "-o", ".venv/.installed", "run", "CONFIG=config.yaml", "CORES=1"]
    _kill_group_when_in_flight(_start(command, root), root)

    rerun = _run(command, root)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output[-6000:]
    assert "removing the lock a killed Snakemake run left" in output
    _check_outputs(root)
    assert (root / "results" / "report.html").stat().st_size > 0
    assert "evosweep finished." in rerun.stdout

    again = _run(command, root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert nothing_to_do(again), again.stdout + again.stderr
    assert "results/report.html is up to date" in again.stdout
    assert "removing the lock" not in again.stderr


def test_a_live_snakemake_keeps_its_lock(tmp_path):
    """The stale-lock check counts a process as Snakemake by its command, and leaves the lock
    alone while one runs in the directory."""
    fake = tmp_path / "bin" / "snakemake"  # a stand-in that runs until its stdin closes
    fake.parent.mkdir()
    fake.write_text("import sys\nprint('ready', flush=True)\nsys.stdin.read()\n")
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("results/x\n")
    process = subprocess.Popen(
        [sys.executable, str(fake)],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        assert [p.pid for p in stalelock.snakemake_processes(tmp_path)] == [process.pid]
        assert stalelock.unlock_if_stale([], tmp_path) == 0
        assert (locks / "0.output.lock").exists()
        # The same process elsewhere does not count.
        assert stalelock.snakemake_processes(tmp_path / "bin") == []
    finally:
        process.stdin.close()
        process.wait()
    assert stalelock.snakemake_processes(tmp_path) == []


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (["/x/.venv/bin/python3", "/x/.venv/bin/snakemake", "--cores", "all"], True),
        (["snakemake", "-n"], True),
        (["/usr/bin/python3", "-m", "snakemake", "--target-jobs", "a"], True),
        (["/x/.venv/bin/python3", "/w/.snakemake/scripts/tmpab12.evolve.py"], True),
        (["/x/.venv/bin/python3", "-m", "evosweep.runtime.stalelock"], False),
        (["make", "run"], False),
        (["vim", "Snakefile"], False),
    ],
)
def test_what_counts_as_snakemake(cmdline, expected):
    assert is_snakemake(cmdline) is expected
