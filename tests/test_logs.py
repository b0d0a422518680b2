"""rule_logger: a rule's script ends within it, without the exit's collection of every object."""

import subprocess
import sys

import pytest

SCRIPT = """
import gc, sys
{preamble}
from evosweep.logs import rule_logger
with rule_logger(sys.argv[1]) as log:
    log.info("work done")
print(gc.get_freeze_count())
"""


@pytest.mark.parametrize(
    ("preamble", "frozen"),
    [("snakemake = object()  # as Snakemake's script preamble defines it", True), ("", False)],
    ids=["snakemake script", "other process"],
)
def test_a_snakemake_script_exits_without_collecting_its_objects(tmp_path, preamble, frozen):
    log = tmp_path / "rule.log"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(preamble=preamble), str(log)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (int(result.stdout) > 0) is frozen, result.stdout
    assert "INFO work done" in log.read_text()


def test_a_failed_script_keeps_its_error_in_the_log(tmp_path):
    log = tmp_path / "rule.log"
    script = SCRIPT.format(preamble="snakemake = object()").replace(
        'log.info("work done")', 'raise ValueError("search.models.svc: no such estimator")'
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(log)], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "ERROR search.models.svc: no such estimator" in log.read_text()
