"""SIGKILL of Snakemake alone (not its process group): the rule's process and everything it
started (ipyparallel controller and engines, SCOOP broker and workers) are gone within 60 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from helpers.slow_fits import STARTED, slow_models
from helpers.waiting import wait_until
from helpers.workflow_runner import REPO, write_config

ORPHAN_SECONDS = 60
EVENT_SECONDS = 300
TESTS = Path(__file__).resolve().parent

CONFIG = {
    "seed": 1,
    "datasets": {"iris": {"source": "sklearn:iris", "test_size": 0.3}},
    "search": {
        "engines": 2,
        "models": slow_models(grid_points=10),
    },
    "evolve": {"workers": 2, "problems": {}},
    "report": {"scaling_in_default": False},
}


def _wait_for_line(path: Path, text: str, process: subprocess.Popen) -> None:
    def logged() -> bool:
        return path.exists() and text in path.read_text()

    wait_until(lambda: logged() or process.poll() is not None, EVENT_SECONDS, 0.1)
    assert logged(), f"no {text!r} in {path} (snakemake exit status {process.poll()})"


@pytest.mark.parametrize("model", sorted(STARTED))
def test_sigkill_of_snakemake_ends_every_process_of_the_run(model, tmp_path):
    config = write_config(tmp_path, CONFIG)
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        EVOSWEEP_TEST_FIT_SECONDS="10",  # longer than ORPHAN_SECONDS of work in all
    )
    snakemake = subprocess.Popen(
        [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile")]
        + ["-d", str(tmp_path), "-c2", f"results/search/{model}/summary.json"]
        + ["--configfile", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_line(tmp_path / "logs" / "search" / f"{model}.log", STARTED[model], snakemake)
        run = psutil.Process(snakemake.pid).children(recursive=True)
        assert len(run) >= 4, run  # the rule's shell and script, and what the script started
        snakemake.send_signal(signal.SIGKILL)
        snakemake.wait()
        _, alive = psutil.wait_procs(run, timeout=ORPHAN_SECONDS)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, [(p.pid, " ".join(p.cmdline())[:100]) for p in alive]
    finally:
        for process in (
            psutil.Process(snakemake.pid).children(recursive=True)
            if (snakemake.poll() is None)
            else []
        ):
            process.kill()
        if snakemake.poll() is None:
            os.killpg(snakemake.pid, signal.SIGKILL)
            snakemake.wait()
