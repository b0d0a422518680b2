"""Shared pytest setup: tests/ on sys.path, Playwright's browser and the Slurm test cluster."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches Debian's chromium (installed here if missing), never a download."""
    from helpers.report_browser import launch_options

    return launch_options(browser_type_launch_args)


@pytest.fixture(scope="session")
def base_url():
    """Pages are local files. (pytest-playwright's stand-in fixture warns under pytest 9.)"""
    return None


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local multi-node Slurm test cluster (tests/slurm/start-cluster.sh); its value
    is the list of compute node names (slurm_cluster.NODES).

    Started here if it is down and we are root with apt-get; otherwise the test
    is skipped -- except in CI (CI=true), where a missing cluster is a failure.
    """
    from helpers.slurm_cluster import NODES, ensure_cluster

    ok, reason = ensure_cluster()
    if not ok:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"Slurm test cluster unavailable in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return list(NODES)
