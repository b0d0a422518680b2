"""Shared pytest setup: tests/ on sys.path and the Slurm test-cluster fixture."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local multi-node Slurm test cluster (tests/slurm/start-cluster.sh); its value
    is the list of compute node names (slurm_cluster.NODES).

    Started here if it is down and we are root with apt-get; otherwise the test
    is skipped -- except in CI (CI=true), where a missing cluster is a failure.
    """
    from slurm_cluster import NODES, ensure_cluster

    ok, reason = ensure_cluster()
    if not ok:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"Slurm test cluster unavailable in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return list(NODES)
