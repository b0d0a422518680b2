"""Evolution stage with real SCOOP workers: determinism, checkpoint/resume, cache, errors."""

from __future__ import annotations

import copy
import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evosweep.config import validate
from evosweep.errors import ConfigError
from evosweep.evolve import checkpoint, launch, stage
from evosweep.evolve.cache import FitnessCache
from evosweep.evolve.parallel import ChunkedMap, ScoopNotRunning, plan_chunks
from evosweep.evolve.spec import build_run
from evosweep.logs import rule_logger
from evosweep.models import Model
from helpers.evolve_results import comparable
from helpers.waiting import wait_until
from helpers.workflow_runner import evosweep_error_lines, snakemake

MODEL = {
    "dataset": "small",
    "estimator": "sklearn.svm.SVC",
    "params": {"kernel": "rbf"},
    "scoring": "accuracy",
}
FEATURE_SELECTION = {
    "algorithm": "nsga2",
    "objective": "feature_selection",
    "model": "svc",
    "population": 8,
    "generations": 4,
    "crossover": 0.9,
    "mutation": 1.0,
    "gene_mutation": None,
    "cv": 3,
    "checkpoint_every": 1,
    "chunksize": None,
}
# Long enough to be killed between checkpoints (a generation takes a fraction of a second).
LONG_RUN = FEATURE_SELECTION | {"generations": 20}
CMA = {
    "algorithm": "cma-es",
    "objective": "rastrigin",
    "dimensions": 5,
    "centroid": 5.0,
    "sigma": 5.0,
    "lambda": 20,
    "generations": 12,
    "checkpoint_every": 4,
    "chunksize": None,
}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """A 300-row slice of digits (a fit takes milliseconds) and best params for it."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("data")
    digits = load_digits()
    frame = pd.DataFrame(digits.data[:300, ::2], columns=[f"px{i}" for i in range(32)])
    frame["target"] = digits.target[:300]
    frame.to_parquet(root / "train.parquet", index=False)
    (root / "best_params.json").write_text(json.dumps({"C": 10.0, "gamma": 0.002}))
    return root


def run_fs(small_data, out: Path, workers: int, spec=FEATURE_SELECTION, seed=42, mode="scoop"):
    out.mkdir(parents=True, exist_ok=True)
    with rule_logger(out / "run.log"):
        return stage.run_problem(
            "fs",
            spec,
            seed,
            workers,
            out,
            out / "ck" / "fs.pkl",
            model=Model.from_config("svc", MODEL),
            best_params_path=small_data / "best_params.json",
            train=small_data / "train.parquet",
            dpi=50,
            map_mode=mode,
        )


def run_cma(out: Path, workers: int, mode="scoop"):
    out.mkdir(parents=True, exist_ok=True)
    with rule_logger(out / "run.log"):
        return stage.run_problem("cma", CMA, 7, workers, out, out / "ck" / "cma.pkl", map_mode=mode)


@pytest.fixture(scope="module")
def reference_runs(small_data, tmp_path_factory):
    """Uninterrupted runs with 1 and 2 real SCOOP workers."""
    root = tmp_path_factory.mktemp("reference")
    for workers in (1, 2):
        run_fs(small_data, root / f"fs{workers}", workers)
        run_cma(root / f"cma{workers}", workers)
    return root


def test_one_and_two_workers_give_identical_results(reference_runs):
    for name in ("fs", "cma"):
        one, two = reference_runs / f"{name}1", reference_runs / f"{name}2"
        assert comparable(one) == comparable(two), name
        assert json.loads((two / "best.json").read_text())["workers"] == 2
    for name in ("convergence.png", "pareto.png"):
        assert (reference_runs / "fs2" / name).stat().st_size > 0
    front = pd.read_csv(reference_runs / "fs2" / "pareto.csv")
    assert list(front.columns) == ["score", "n_features", "features"]
    assert front["n_features"].is_monotonic_increasing
    # One progress line per generation, and the checkpoint is gone once outputs exist.
    log = (reference_runs / "fs2" / "run.log").read_text()
    assert log.count("generation ") >= FEATURE_SELECTION["generations"] + 1
    assert not (reference_runs / "fs2" / "ck" / "fs.pkl").exists()


def test_serial_map_matches_scoop(reference_runs, tmp_path):
    run_cma(tmp_path / "serial", 1, mode="serial")
    assert comparable(tmp_path / "serial") == comparable(reference_runs / "cma2")


def test_cheap_batches_stay_in_the_master_in_every_generation(monkeypatch):
    """The default Rastrigin problem's batches (1000 genomes, about 40 us each) are cheaper than
    a round trip: with 2 workers every generation is evaluated in the master, including the
    first, whose first genome pays the one-off costs while a second worker may still be
    starting. The costs are given, not timed, so the outcome does not depend on the host."""
    from evosweep.evolve import parallel

    calls = []

    def fake_chunk(spec, genomes):
        calls.append(len(genomes))
        seconds = 5e-4 if len(calls) == 1 else 4e-5 * len(genomes)  # one-off costs first
        return [(float(sum(g)),) for g in genomes], seconds

    monkeypatch.setattr(parallel, "evaluate_chunk", fake_chunk)
    mapper = ChunkedMap("pool", workers=2)
    try:
        for generation in range(5):
            genomes = [[i, generation] for i in range(1000)]
            results = mapper({"objective": "fake"}, genomes)
            assert results == [(float(i + generation),) for i in range(1000)]
        assert mapper.workers == 2
        # Warm-up and two timed probes, then every genome of every generation in the master.
        assert calls == [1, 1, 1, 997] + [1000] * 4
        assert mapper.tasks_sent == 0
    finally:
        mapper.close()


def _spec_for(small_data, out: Path, workers: int) -> Path:
    """The run file the launcher would write, for launching SCOOP by hand."""
    run = build_run(
        "fs",
        LONG_RUN,
        42,
        workers,
        out / "ck" / "fs.pkl",
        model=Model.from_config("svc", MODEL),
        best_params=stage.load_best_params(small_data / "best_params.json"),
        train=small_data / "train.parquet",
    )
    path = out / "run.json"
    run.write(path)
    return path


@pytest.fixture(scope="module")
def uninterrupted_long_run(small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    run_fs(small_data, out, 1, spec=LONG_RUN)
    return out


def _wait_for_checkpoint(saved: Path, process: subprocess.Popen, generation: int = 2) -> None:
    def reached() -> bool:
        return saved.exists() and pickle.loads(saved.read_bytes())["generation"] >= generation

    wait_until(lambda: process.poll() is not None or reached(), 60)
    assert process.poll() is None and reached(), (
        "the run ended (or stalled) before it could be killed"
    )


def _kill_scoop_run_with_sigkill(small_data, tmp_path) -> None:
    """Like a node failure: master and workers die at once."""
    spec_path = _spec_for(small_data, tmp_path, 2)
    process = subprocess.Popen(
        launch.origin_command(spec_path, tmp_path / "unused.pkl", 2),
        env=dict(os.environ, PYTHONPATH=str(launch.SRC_DIR)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for_checkpoint(tmp_path / "ck" / "fs.pkl", process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _terminate_rule_with_sigterm(small_data, tmp_path) -> None:
    """Like a Slurm time limit: SIGTERM to the rule's process, which must end SCOOP's tree."""
    code = (
        "from pathlib import Path; from evosweep.evolve import stage\n"
        "from evosweep.logs import rule_logger; from evosweep.models import Model\n"
        f"with rule_logger({str(tmp_path / 'term.log')!r}):\n"
        f"    stage.run_problem('fs', {LONG_RUN!r}, 42, 2, Path({str(tmp_path)!r}), "
        f"Path({str(tmp_path / 'ck' / 'fs.pkl')!r}), model=Model.from_config('svc', {MODEL!r}), "
        f"best_params_path={str(small_data / 'best_params.json')!r}, "
        f"train={str(small_data / 'train.parquet')!r}, dpi=50)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=str(launch.SRC_DIR)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_checkpoint(tmp_path / "ck" / "fs.pkl", process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) != 0
    log = (tmp_path / "term.log").read_text()
    scoop_pid = int(log.split("SCOOP launcher pid ")[1].split()[0])
    assert _live_processes_in_group(scoop_pid) == []  # no SCOOP process outlives the rule


def _live_processes_in_group(pgid: int, wait: float = 10.0) -> list[int]:
    """Processes of process group `pgid` that are not zombies (SIGKILL lands asynchronously)."""

    def live() -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
        return pids

    wait_until(lambda: not live(), wait, 0.2)
    return live()


@pytest.mark.parametrize("kill", [_kill_scoop_run_with_sigkill, _terminate_rule_with_sigterm])
def test_resume_after_kill_equals_uninterrupted_run(
    kill, small_data, uninterrupted_long_run, tmp_path
):
    kill(small_data, tmp_path)
    saved = tmp_path / "ck" / "fs.pkl"
    killed_at = pickle.loads(saved.read_bytes())["generation"]
    assert 2 <= killed_at < LONG_RUN["generations"]

    run_fs(small_data, tmp_path, 2, spec=LONG_RUN)
    log = (tmp_path / "run.log").read_text()
    assert f"resuming from checkpoint {saved} at generation {killed_at}" in log
    assert comparable(tmp_path) == comparable(uninterrupted_long_run)


def test_checkpoint_of_another_config_is_ignored(small_data, reference_runs, tmp_path):
    # A checkpoint written for seed 1 must not be reused by the seed-42 run.
    checkpoint.save(tmp_path / "ck" / "fs.pkl", {"fingerprint": "other", "generation": 3})
    run_fs(small_data, tmp_path, 2)
    log = (tmp_path / "run.log").read_text()
    assert "ignoring checkpoint" in log and "different configuration" in log
    assert "resuming" not in log
    assert comparable(tmp_path) == comparable(reference_runs / "fs2")


def test_scoop_map_outside_scoop_fails_clearly(tmp_path):
    with pytest.raises(ScoopNotRunning, match=r"not started by `python -m scoop`"):
        ChunkedMap("scoop", workers=2)
    build_run("x", CMA | {"objective": "sphere", "dimensions": 2}, 1, 2, tmp_path / "x.pkl").write(
        tmp_path / "run.json"
    )
    command = [sys.executable, str(launch.SCOOP_MAIN), "--spec", str(tmp_path / "run.json")]
    result = subprocess.run(
        [*command, "--result", str(tmp_path / "result.pkl")],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(launch.SRC_DIR)),
    )
    assert result.returncode == 2
    assert "python -m scoop -n N" in result.stderr and "--map serial" in result.stderr
    assert not (tmp_path / "result.pkl").exists()


def test_cache_evaluates_each_genome_once_and_counts_hits():
    calls = []

    def evaluate(batch):
        calls.append(len(batch))
        return [(float(sum(g)),) for g in batch]

    cache = FitnessCache(keep_genomes=True)
    results, hits = cache.evaluate([[1, 0], [0, 1], [1, 0]], evaluate)
    assert (results, hits, calls) == ([(1.0,), (1.0,), (1.0,)], 1, [2])
    results, hits = cache.evaluate([[0, 1], [1, 1]], evaluate)
    assert hits == 1 and calls == [2, 1] and len(cache) == 3
    assert [g for g, _ in cache.evaluated()] == [[1, 0], [0, 1], [1, 1]]


def test_logbook_counts_cache_hits(reference_runs):
    logbook = pd.read_csv(reference_runs / "fs2" / "logbook.csv")
    best = json.loads((reference_runs / "fs2" / "best.json").read_text())
    population, generations = FEATURE_SELECTION["population"], FEATURE_SELECTION["generations"]
    # Every offspring is either evaluated or served by the cache.
    assert (logbook["evaluations"] + logbook["cache_hits"] == population).all()
    assert best["evaluations"] + best["cache_hits"] == population * (generations + 1)
    assert best["evaluations"] == logbook["evaluations"].sum()


def test_chunks_carry_about_min_task_seconds_of_work():
    assert plan_chunks(1000, 2, 5e-6) == [1000]  # Rastrigin: a round trip costs more
    assert plan_chunks(8, 2, 0.01) == [8]  # 80 ms: not worth two tasks
    assert plan_chunks(6, 2, 0.02) == [3, 3]  # 120 ms: two tasks of >= 50 ms
    assert plan_chunks(22, 2, 0.01) == [6, 6, 5, 5]  # sizes differ by one at most
    assert plan_chunks(1000, 2, 1.1e-3) == [46] * 10 + [45] * 12  # 22 tasks of about 50 ms
    # CV fits (0.1 s and more): one per task, so no worker idles behind a big last chunk.
    assert plan_chunks(20, 2, 0.2) == [1] * 20
    assert plan_chunks(20, 1, 0.2) == [20]  # one worker: everything in the master
    assert plan_chunks(5, 2, None, chunksize=2) == [2, 2, 1]


def test_the_probe_times_a_warm_genome_not_the_one_off_costs(monkeypatch):
    """The first genome pays the one-off costs (data, imports, numpy's first calls): judged by
    it, a cheap objective would be shipped to workers that may still be starting up."""
    from evosweep.evolve import parallel

    calls = []
    # One-off costs, then a timing disturbed by a context switch, then the real cost.
    probe_seconds = [0.5, 0.01, 4e-5]

    def fake_chunk(spec, genomes):
        calls.append(len(genomes))
        seconds = probe_seconds[len(calls) - 1] if len(calls) <= 3 else 4e-5 * len(genomes)
        return [(float(sum(g)),) for g in genomes], seconds

    monkeypatch.setattr(parallel, "evaluate_chunk", fake_chunk)
    mapper = ChunkedMap("pool", workers=2)
    try:
        genomes = [[i, 1.0] for i in range(1000)]
        assert mapper({"objective": "fake"}, genomes) == [(i + 1.0,) for i in range(1000)]
        # Warm-up, two timed probes, then the other 997 in the master: not worth a task.
        assert calls == [1, 1, 1, 997]
        assert mapper.tasks_sent == 0
        assert mapper.seconds_per_item == pytest.approx(4e-5)
    finally:
        mapper.close()


BASE = {"datasets": {"small": {"source": "sklearn:iris"}}}


def _config(problem=None, model=MODEL):
    config = copy.deepcopy(BASE)
    config["search"] = {"models": {"svc": {**model, "space": {"C": [1, 10]}}}}
    config["evolve"] = {"problems": {"p": problem or FEATURE_SELECTION}}
    return config


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        (
            FEATURE_SELECTION | {"population": 10},
            "evolve.problems.p.population: nsga2 needs a population divisible by 4",
        ),
        (
            FEATURE_SELECTION | {"algorithm": "cma-es"},
            "evolve.problems.p.algorithm: cma-es samples real vectors",
        ),
        (FEATURE_SELECTION | {"algorithm": "pso"}, "evolve.problems.p.algorithm: 'pso' is not one"),
        (FEATURE_SELECTION | {"objective": "ackley"}, "evolve.problems.p.objective: 'ackley'"),
        (
            FEATURE_SELECTION | {"model": "missing"},
            "evolve.problems.p.model: unknown search model 'missing'",
        ),
        (CMA | {"lambda": 1}, "evolve.problems.p.lambda: 1 is out of range"),
        (
            {k: v for k, v in FEATURE_SELECTION.items() if k != "model"},
            "evolve.problems.p.model: feature selection needs 'model'",
        ),
    ],
)
def test_bad_problems_are_one_line_config_errors(problem, expected):
    config = _config(problem)
    with pytest.raises(ConfigError) as error:
        validate(config)
        stage.check_config(config)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_feature_selection_on_a_clustering_model_is_a_config_error():
    kmeans = {"dataset": "small", "estimator": "sklearn.cluster.KMeans", "scoring": "silhouette"}
    config = validate(_config(model=kmeans))
    with pytest.raises(ConfigError, match="evolve.problems.p.model: .*clustering model"):
        stage.check_config(config)


def test_workflow_stops_on_a_bad_problem_before_any_job(tmp_path):
    config = _config(FEATURE_SELECTION | {"population": 6})
    config["search"]["models"]["svc"]["dataset"] = "small"
    result = snakemake(tmp_path, config, "-n", check=False)
    assert result.returncode != 0
    assert evosweep_error_lines(result) == [
        "evosweep: config error at evolve.problems.p.population: nsga2 needs a population "
        f"divisible by 4 (DEAP's selTournamentDCD), got 6 (fix {tmp_path / 'config.yaml'})"
    ]


def test_a_checkpoint_has_one_writer_at_a_time(tmp_path):
    """A second process (an orphan, a concurrent launch) cannot write a checkpoint another
    live process holds; once the holder ends, even by SIGKILL, the lock is free again."""
    path = tmp_path / "ck" / "p.pkl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from evosweep.evolve import checkpoint\n"
            f"with checkpoint.writer_lock({str(path)!r}):\n"
            "    print('locked', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(checkpoint.CheckpointBusy, match="another process is writing"):
            with checkpoint.writer_lock(path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with checkpoint.writer_lock(path):
        pass
