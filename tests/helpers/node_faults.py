"""Lose a node's engine at a known point of a search on the Slurm test cluster: while one of its
fits runs, not after a delay.

``HangOnceOnNode`` is scikit-learn's SVC (same parameters, same results), except that the first
fit to start on node ``$EVOSWEEP_TEST_HANG_NODE`` (the node's UTS name) writes its process's PID
to ``$EVOSWEEP_TEST_HANG_MARKER`` and hangs until killed. Every later fit, there or anywhere,
runs normally, so a resubmitted batch or a retried job completes. Engines import this module
from tests/ (the test puts it on PYTHONPATH; Slurm jobs and their steps inherit the environment).
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from sklearn.svm import SVC

NODE_VARIABLE = "EVOSWEEP_TEST_HANG_NODE"
MARKER_VARIABLE = "EVOSWEEP_TEST_HANG_MARKER"


def claim(marker: Path) -> bool:
    """Write this process's PID to `marker` unless a process has claimed it; True if we did.

    The PID goes to a file only one process can create, then is renamed into place, so a
    reader never sees the marker half written."""
    partial = marker.with_name(marker.name + ".claim")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    partial.rename(marker)
    return True


class HangOnceOnNode(SVC):
    def fit(self, X, y, sample_weight=None):
        node, marker = os.environ.get(NODE_VARIABLE), os.environ.get(MARKER_VARIABLE)
        if node and marker and socket.gethostname() == node and claim(Path(marker)):
            threading.Event().wait()
        return super().fit(X, y, sample_weight=sample_weight)
