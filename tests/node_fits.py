"""Estimators for multi-node tests on the Slurm test cluster: where each fit ran, and a node's
engine lost at a known point (while one of its fits runs, not after a delay).

Both are scikit-learn's SVC (same parameters, same results). ``RecordingSVC`` writes, for each
process that fits, one JSON file naming the Slurm job, the node (its UTS name), the process's
role and, in a SCOOP worker, the broker address it connected to, into ``$EVOSWEEP_TEST_FITS_DIR``
(nothing when unset). ``HangOnceOnNode`` also makes the first fit to start on node
``$EVOSWEEP_TEST_HANG_NODE`` write its PID to ``$EVOSWEEP_TEST_HANG_MARKER`` and hang until
killed; every later fit, there or anywhere, runs normally, so a resubmitted batch or a retried
job completes. Engines and SCOOP workers import this module from tests/ (the test puts it on
PYTHONPATH; Slurm jobs and their steps inherit the environment).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path

from sklearn.svm import SVC

FITS_VARIABLE = "EVOSWEEP_TEST_FITS_DIR"
NODE_VARIABLE = "EVOSWEEP_TEST_HANG_NODE"
MARKER_VARIABLE = "EVOSWEEP_TEST_HANG_MARKER"


def role() -> str:
    """'engine' (ipyparallel engines run as `python -c`), 'scoop' (a SCOOP worker or origin),
    else 'other' (e.g. the rule's own refit)."""
    if sys.argv[:1] == ["-c"]:
        return "engine"
    scoop = sys.modules.get("scoop")
    return "scoop" if getattr(scoop, "BROKER", None) is not None else "other"


def record_fit() -> None:
    directory = os.environ.get(FITS_VARIABLE)
    if not directory:
        return
    scoop = sys.modules.get("scoop")
    broker = getattr(scoop, "BROKER", None)
    record = {
        "job": os.environ.get("SLURM_JOB_ID"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "role": role(),
        "broker": broker.hostname if broker is not None else None,
    }
    # One file per process, rewritten by each of its fits with the same content.
    path = Path(directory) / f"{record['job']}-{record['host']}-{record['pid']}.json"
    partial = path.with_name(f".{path.name}.{threading.get_ident()}")
    partial.write_text(json.dumps(record))
    partial.rename(path)


def fit_records(directory: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(Path(directory).glob("*.json"))]


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


class RecordingSVC(SVC):
    def fit(self, X, y, sample_weight=None):
        record_fit()
        return super().fit(X, y, sample_weight=sample_weight)


class HangOnceOnNode(RecordingSVC):
    def fit(self, X, y, sample_weight=None):
        node, marker = os.environ.get(NODE_VARIABLE), os.environ.get(MARKER_VARIABLE)
        if node and marker and socket.gethostname() == node and claim(Path(marker)):
            threading.Event().wait()
        return super().fit(X, y, sample_weight=sample_weight)
