"""Searches resume after SIGKILL, SIGTERM or SIGUSR1: finished fits (grid, halving) and
evaluations (the evolutionary strategy's GA) come from the journal, the outputs equal an
uninterrupted run's, and only the work in flight at the kill is done again.

Every search is a real process (`python -c` calling evosweep.search.run) with real ipyparallel
engines or SCOOP workers. It is stopped once its journal holds half the fits or evaluations of
an uninterrupted run (an event, read from the journal), while fits of a fixed minimum time
(slow_fits.SlowSVC) are still ahead of it, so the stop always lands mid-search.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from evosweep import config, journal, search
from evosweep.data import prepare, write
from helpers.waiting import wait_until

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
SVC = {
    "dataset": "digits",
    "estimator": "helpers.slow_fits.SlowSVC",
    "params": {"kernel": "rbf"},
    "cv": 3,
    "scoring": "accuracy",
}
DISTRIBUTIONS = {"C": {"loguniform": [0.1, 100]}, "gamma": {"loguniform": [1e-4, 1e-2]}}
SPECS = {
    # Raw penguins (text columns, gaps) with preprocessing steps in the space: 12 candidates
    # x 3 folds = 36 fits of a pipeline.
    "grid_preprocess": SVC
    | {
        "dataset": "penguins",
        "strategy": "grid",
        "preprocess": {"impute": "median", "categorical": "onehot"},
        "space": {
            "C": {"logspace": [-1, 2, 4]},
            "preprocess.scale": ["standard", "robust", None],
        },
    },
    # 16 candidates x 3 folds = 48 fits
    "grid": SVC
    | {
        "strategy": "grid",
        "space": {"C": {"logspace": [-1, 2, 4]}, "gamma": {"logspace": [-4, -2, 4]}},
    },
    # 16, 6 and 2 candidates on growing subsamples of the folds: 48 + 18 + 6 = 72 fits
    "halving": SVC | {"strategy": "halving", "n_iter": 16, "space": DISTRIBUTIONS},
    # No periodic checkpoint: a SIGKILL leaves only the journal, a SIGTERM the checkpoint the
    # stop writes at once.
    "evolutionary": SVC
    | {
        "strategy": "evolutionary",
        "space": DISTRIBUTIONS,
        "evolution": {
            "population": 8,
            "generations": 6,
            "crossover": 0.7,
            "mutation": 0.6,  # 37 evaluations, so plenty are ahead of the stop
            "tournament": 3,
            "gene_mutation": None,
            "checkpoint_every": 10,
        },
    },
}
RESUMED = re.compile(r"resumed (\d+) of (\d+) (fits|evaluations) from the journal")
RUN = """
import json, sys
from evosweep import search
from evosweep.logs import rule_logger
from evosweep.models import Model

args = json.loads(sys.argv[1])
with rule_logger(args.pop("log")):
    search.run(Model.from_config(args.pop("name"), args.pop("spec")), **args)
"""


DATASETS = {
    "digits": {"source": "sklearn:digits", "test_size": 0.3, "stratify": True},
    "penguins": {"source": f"csv:{TESTS / 'data' / 'penguins.csv'}", "target": "species"},
}


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """{dataset: (train, test)} of every dataset a search here uses."""
    paths = {}
    for name, spec in DATASETS.items():
        folder = tmp_path_factory.mktemp(name)
        train, test, summary = prepare(
            name, config.validate({"datasets": {name: spec}})["datasets"][name], 42
        )
        files = [folder / n for n in ("train.parquet", "test.parquet", "summary.json")]
        write(train, test, summary, *files)
        paths[name] = files[0], files[1]
    return paths


def _start(
    strategy: str, splits, out: Path, checkpoint: Path, spec=None, workers=2
) -> subprocess.Popen:
    spec = spec or SPECS[strategy]
    train, test = splits[spec["dataset"]]
    args = {
        "name": strategy,
        "spec": spec,
        "seed": 42,
        "train_path": str(train),
        "test_path": str(test),
        "out_dir": str(out),
        "workers": workers,
        "checkpoint": str(checkpoint),
        "log": str(out / "search.log"),
    }
    out.mkdir(parents=True, exist_ok=True)
    # Engines and SCOOP workers inherit the environment: they import slow_fits from tests/.
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS)]),
        EVOSWEEP_TEST_FIT_SECONDS="0.1",
    )
    return subprocess.Popen(
        [sys.executable, "-c", RUN, json.dumps(args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _run(strategy: str, splits, out: Path, checkpoint: Path, spec=None, workers=2) -> str:
    process = _start(strategy, splits, out, checkpoint, spec, workers)
    log = out / "search.log"
    assert process.wait(timeout=600) == 0, log.read_text()[-4000:]
    return log.read_text()


@pytest.fixture(scope="module")
def uninterrupted(splits, tmp_path_factory):
    """One uninterrupted run per strategy (made when a test first needs it)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    done = {}

    def get(strategy: str) -> Path:
        if strategy not in done:
            checkpoint = root / "checkpoints" / f"{strategy}.pkl"
            _run(strategy, splits, root / strategy, checkpoint)
            assert not journal.path_for(checkpoint).exists()  # a finished search cleans up
            done[strategy] = root / strategy
        return done[strategy]

    return get


def journal_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path, timeout=30)) as db:
        try:
            return db.execute("SELECT count(*) FROM entries").fetchone()[0]
        except sqlite3.OperationalError:  # the writer has not created its tables yet
            return 0


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(stat.parent.name)] = (int(fields[1]), fields[0])
    return table


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (engines, controller, SCOOP launcher, broker and workers),
    parents before their children."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in _processes().items():
        children.setdefault(parent, []).append(child)
    tree = [pid]
    for current in tree:  # grows as it goes: breadth first
        tree += children.get(current, [])
    return tree


def live(pids: list[int], wait: float = 30.0) -> list[int]:
    """Those of `pids` still running (not zombies) after up to `wait` s for them to end."""

    def running() -> list[int]:
        table = _processes()
        return [pid for pid in pids if pid in table and table[pid][1] != "Z"]

    wait_until(lambda: not running(), wait, 0.1)
    return running()


def _stop_at(process: subprocess.Popen, rows: int, path: Path, out: Path, how: str) -> list[int]:
    """Once the journal `path` holds `rows` rows, stop the run: SIGKILL to every process of it
    at once (a node failure), or SIGTERM/SIGUSR1 to the search process alone (a time limit,
    a cancel; it must end the rest). Returns the processes the run had."""
    # 600: only a guard against a hang
    wait_until(lambda: journal_rows(path) >= rows or process.poll() is not None, 600, 0.02)
    if journal_rows(path) < rows:
        log = (out / "search.log").read_text() if (out / "search.log").exists() else ""
        raise AssertionError(f"the search ended before it could be stopped:\n{log[-4000:]}")
    tree = process_tree(process.pid)
    if how == "SIGKILL":
        # Leaves first: no process outlives its parent long enough to act on its death.
        for pid in reversed(tree):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    else:
        process.send_signal(getattr(signal, how))
    return tree


def _without_timings(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame.drop(columns=[c for c in search.TIMING_COLUMNS if c in frame])


def _assert_same_outputs(out: Path, reference: Path) -> None:
    pd.testing.assert_frame_equal(
        _without_timings(out / "cv_results.csv"), _without_timings(reference / "cv_results.csv")
    )
    for name in ("best_params.json", "test_scores.json"):
        assert (out / name).read_text() == (reference / name).read_text(), name


def _checkpointed_evaluations(checkpoint: Path) -> int:
    if not checkpoint.exists():
        return 0
    from evosweep.evolve import algorithms  # noqa: F401 - DEAP classes the checkpoint refers to

    return len(pickle.loads(checkpoint.read_bytes())["cache"]["results"])


CASES = [
    (how, strategy)
    for how in ("SIGKILL", "SIGTERM")
    for strategy in SPECS
    if strategy != "grid_preprocess"
] + [
    ("SIGKILL", "grid_preprocess"),
    ("SIGUSR1", "grid"),
    ("SIGUSR1", "evolutionary"),
]


@pytest.mark.parametrize(("how", "strategy"), CASES)
def test_resumed_search_redoes_only_the_work_in_flight(
    how, strategy, splits, uninterrupted, tmp_path
):
    reference = uninterrupted(strategy)
    summary = json.loads((reference / "summary.json").read_text())
    total = summary["evaluations"] if strategy == "evolutionary" else summary["n_fits"]
    checkpoint = tmp_path / "checkpoints" / f"{strategy}.pkl"
    journal_path = journal.path_for(checkpoint)
    out = tmp_path / "out"

    threshold = total // 2
    if strategy == "halving":  # into iteration 2: its fits differ from 1's by their subsample
        threshold = 48 + 4
    if strategy == "evolutionary":  # past generation 0, so there is a generation to checkpoint
        threshold = max(threshold, SPECS[strategy]["evolution"]["population"] + 1)
    process = _start(strategy, splits, out, checkpoint)
    tree = _stop_at(process, threshold, journal_path, out, how)
    code = process.wait(timeout=120)
    if how == "SIGKILL":
        assert code == -signal.SIGKILL
    else:
        assert code != 0, "a stopped search must not look finished"
        # The search process ended every process it had started, by itself.
        assert live(tree) == []
        log = (out / "search.log").read_text()
        if strategy == "evolutionary":  # the SCOOP launch turns either into its own stop
            assert f"terminated by signal {int(getattr(signal, how))}" in log, log[-3000:]
        else:
            assert f"stopped by {how}" in log, log[-3000:]
        if strategy == "evolutionary":
            # The origin wrote a checkpoint at once: its last finished generation (or a later
            # one, if a generation finished between the event and the signal).
            finished = [int(g) for g in re.findall(r"generation (\d+)/\d+", log)]
            saved = pickle.loads(checkpoint.read_bytes())
            assert saved["generation"] >= max(finished), (saved["generation"], finished)
    assert live(tree) == []
    assert not (out / "summary.json").exists()
    rows = journal_rows(journal_path)
    in_checkpoint = _checkpointed_evaluations(checkpoint)
    assert threshold <= rows <= total

    log = _run(strategy, splits, out, checkpoint)
    reused, needed, unit = map(str, RESUMED.search(log).groups())
    reused, needed = int(reused), int(needed)
    # Every journalled fit or evaluation was reused (or already in the checkpoint); only the
    # others ran again: those in flight at the stop and those never started.
    assert reused == rows - in_checkpoint, log[-3000:]
    assert needed == total - in_checkpoint, log[-3000:]
    if strategy == "evolutionary":
        assert unit == "evaluations"
        if in_checkpoint:
            assert "resuming from checkpoint" in log
    else:
        assert unit == "fits"
    assert "different configuration" not in log
    _assert_same_outputs(out, reference)
    assert not journal_path.exists() and not checkpoint.exists()  # a finished search cleans up


def test_journal_of_another_configuration_is_ignored(tmp_path, caplog):
    path = tmp_path / "m.journal"
    with closing(journal.Journal(path, {"seed": 1})) as first:
        first.record([b"a", b"b"], [(0.5,), (0.7,)])
        assert first.lookup([b"a", b"c"]) == {b"a": (0.5,)}
    with caplog.at_level(logging.INFO, logger="evosweep.journal"):
        with closing(journal.Journal(path, {"seed": 1})) as same:
            assert len(same) == 2 and same.found_at_start == 2
        assert "holds 2 results of an interrupted run" in caplog.text
        with closing(journal.Journal(path, {"seed": 2})) as other:
            assert len(other) == 0 and other.lookup([b"a"]) == {}
    assert "ignoring journal" in caplog.text and "different configuration" in caplog.text
    with closing(journal.Journal(path, {"seed": 1})) as again:
        assert len(again) == 0  # the other configuration's journal replaced it


def test_a_partly_journalled_batch_sends_only_its_missing_fits(tmp_path):
    """The backend's view of a batch: journalled fits are answered locally, in place."""
    from joblib.parallel import BatchedCalls
    from sklearn.model_selection._validation import _fit_and_score
    from sklearn.svm import SVC as PlainSVC

    def fit(i):
        kwargs = {"train": [i, i + 1], "test": [i + 2], "parameters": {"C": float(i)}}
        return (_fit_and_score, (PlainSVC(), [[0.0]], [0]), kwargs)

    calls = [fit(i) for i in range(4)]
    fits = journal.FitJournal(tmp_path / "s.journal", {"search": "s"})
    try:
        fits.record([fits.key(calls[1]), fits.key(calls[3])], ["journalled 1", "journalled 3"])
        sent = []

        class Sent:
            def __init__(self, batch):
                sent.append(batch)
                self.future = concurrent.futures.Future()
                self.future.set_result([f"ran {c[2]['parameters']['C']:g}" for c in batch.items])

            def get(self, timeout=None):
                return self.future.result()

        finished = []
        batch = fits.submit(BatchedCalls(calls, (None, None)), Sent, finished.append)
        assert [len(b) for b in sent] == [2] and sent[0].items == [calls[0], calls[2]]
        assert batch.get() == ["ran 0", "journalled 1", "ran 2", "journalled 3"]
        assert len(finished) == 1 and (fits.reused, fits.sent) == (2, 2)
        assert fits.key(calls[0]) in fits  # journalled when it came back

        # All journalled: nothing is sent, and the batch still completes (on another thread).
        done = concurrent.futures.Future()
        whole = fits.submit(BatchedCalls(calls[:2], (None, None)), Sent, done.set_result)
        done.result(timeout=30)
        assert whole.get() == ["ran 0", "journalled 1"] and len(sent) == 1
    finally:
        fits.close()


# tpe, cmaes and asha: their samplers are replayed from the journalled scores (2 engines); asha's
# promotions depend on the order results arrive, so it runs on 1 engine, where that order is the
# order fits are sent in, and its journal replays the order the killed run took.
MODEL_BASED_SPECS = {
    # 12 candidates x 3 folds = 36 fits, proposed 2 at a time
    "tpe": SVC
    | {
        "strategy": "tpe",
        "n_iter": 12,
        "space": {"C": {"logspace": [-1, 2, 8]}, "gamma": {"logspace": [-4, -2, 8]}},
    },
    "cmaes": SVC
    | {
        "strategy": "cmaes",
        "n_iter": 12,
        "space": {"C": {"logspace": [-1, 2, 8]}, "gamma": {"logspace": [-4, -2, 8]}},
    },
    # 12 candidates on 90, then 270 training samples (eta 3)
    "asha": SVC | {"strategy": "asha", "n_iter": 12, "min_resources": 90, "space": DISTRIBUTIONS},
}
MODEL_BASED_WORKERS = {"tpe": 2, "cmaes": 2, "asha": 1}


@pytest.mark.parametrize("strategy", ["tpe", "cmaes", "asha"])
def test_killed_model_based_search_resumes_to_the_uninterrupted_result(strategy, splits, tmp_path):
    reference = tmp_path / "uninterrupted"
    spec, workers = MODEL_BASED_SPECS[strategy], MODEL_BASED_WORKERS[strategy]
    _run(strategy, splits, reference, tmp_path / "reference" / f"{strategy}.pkl", spec, workers)
    total = json.loads((reference / "summary.json").read_text())["n_fits"]

    checkpoint = tmp_path / "checkpoints" / f"{strategy}.pkl"
    out = tmp_path / "out"
    process = _start(strategy, splits, out, checkpoint, spec, workers)
    tree = _stop_at(process, total // 2, journal.path_for(checkpoint), out, "SIGKILL")
    assert process.wait(timeout=120) == -signal.SIGKILL
    assert live(tree) == []
    assert not (out / "summary.json").exists()
    assert journal_rows(journal.path_for(checkpoint)) >= total // 2

    log = _run(strategy, splits, out, checkpoint, spec, workers)
    reused, needed = map(int, RESUMED.search(log).groups()[:2])
    assert reused > 0 and needed == total, log[-3000:]
    if strategy == "asha":
        assert "replaying the order of" in log, log[-3000:]
    _assert_same_outputs(out, reference)
    assert not journal.path_for(checkpoint).exists()
