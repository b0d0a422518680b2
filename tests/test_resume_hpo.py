"""tpe and asha resume after SIGKILL with the outputs of an uninterrupted run.

As tests/test_resume.py does it for grid and halving: a real search process with real engines
and fits of a fixed minimum time (slow_fits.SlowSVC), killed with every process it started once
its journal holds about half the fits of an uninterrupted run (an event read from the journal),
then run again. tpe's sampler is replayed from the journalled scores (2 engines); asha's
promotions depend on the order results arrive, so it runs on 1 engine, where that order is the
order fits are sent in, and its journal replays the order the killed run took.
"""

from __future__ import annotations

import json
import re
import signal

import pytest

from evosweep import journal
from test_resume import (
    DISTRIBUTIONS,
    SVC,
    _assert_same_outputs,
    _run,
    _start,
    _stop_at,
    digits,  # noqa: F401 - the data fixture
    journal_rows,
    live,
)

SPECS = {
    # 12 candidates x 3 folds = 36 fits, proposed 2 at a time
    "tpe": SVC
    | {
        "strategy": "tpe",
        "n_iter": 12,
        "space": {"C": {"logspace": [-1, 2, 8]}, "gamma": {"logspace": [-4, -2, 8]}},
    },
    # 12 candidates on 90, then 270 training samples (eta 3)
    "asha": SVC | {"strategy": "asha", "n_iter": 12, "min_resources": 90, "space": DISTRIBUTIONS},
}
WORKERS = {"tpe": 2, "asha": 1}
RESUMED = re.compile(r"resumed (\d+) of (\d+) fits from the journal")


@pytest.mark.parametrize("strategy", ["tpe", "asha"])
def test_killed_search_resumes_to_the_uninterrupted_result(strategy, digits, tmp_path):  # noqa: F811
    reference = tmp_path / "uninterrupted"
    spec, workers = SPECS[strategy], WORKERS[strategy]
    _run(strategy, digits, reference, tmp_path / "reference" / f"{strategy}.pkl", spec, workers)
    total = json.loads((reference / "summary.json").read_text())["n_fits"]

    checkpoint = tmp_path / "checkpoints" / f"{strategy}.pkl"
    out = tmp_path / "out"
    process = _start(strategy, digits, out, checkpoint, spec, workers)
    tree = _stop_at(process, total // 2, journal.path_for(checkpoint), out, "SIGKILL")
    assert process.wait(timeout=120) == -signal.SIGKILL
    assert live(tree) == []
    assert not (out / "summary.json").exists()
    assert journal_rows(journal.path_for(checkpoint)) >= total // 2

    log = _run(strategy, digits, out, checkpoint, spec, workers)
    reused, needed = map(int, RESUMED.search(log).groups())
    assert reused > 0 and needed == total, log[-3000:]
    if strategy == "asha":
        assert "replaying the order of" in log, log[-3000:]
    _assert_same_outputs(out, reference)
    assert not journal.path_for(checkpoint).exists()
