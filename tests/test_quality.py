"""The gates every change passes: snakemake --lint, snakefmt --check, ruff."""

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.workflow_runner import REPO

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "snakemake"), "--lint"],
        [str(BIN / "snakefmt"), "--check", "."],
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
    ],
    ids=["snakemake-lint", "snakefmt", "ruff-check", "ruff-format"],
)
def test_gate_is_clean(command):
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if command[1] == "--lint":
        assert "Lints for" not in output, output
