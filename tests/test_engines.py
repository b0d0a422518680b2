"""Real ipyparallel engines: private clusters, clean shutdown, thread limits, lost engines."""

import asyncio
import concurrent.futures
import contextlib
import os
import stat
import subprocess
import sys

import cloudpickle
import pytest
from ipyparallel.error import RemoteError
from joblib import Parallel, delayed

from evosweep.engines import ENGINE_CMD, engine_cluster
from evosweep.engines.engine import PRELOAD_THREAD, copies_here
from evosweep.engines.programs import PRELOAD_VARIABLE
from helpers.engine_faults import EngineKiller, hang_if_victim

# Engines cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _square(value, victim, fifo):
    hang_if_victim(victim, fifo, f"square({value})")
    return value * value


def test_cluster_is_private_secure_and_removed():
    with engine_cluster(2, slurm=False) as engines:
        assert len(engines.client.ids) == 2
        security = engines.workdir / "profile" / "security"
        files = list(security.glob("*.json"))
        assert files
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        environment = engines.client[:].apply_sync(
            lambda: {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        )
        assert environment == [{"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}] * 2
        pids = engines.engine_pids()
        workdir = engines.workdir
    assert not workdir.exists()
    for pid in pids:  # engines exited with the context
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _module_telling_who_imported_it(tmp_path, monkeypatch) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "importing_thread.py").write_text(
        "import os, threading\nPID = os.getpid()\nNAME = threading.current_thread().name\n"
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(modules), os.environ.get("PYTHONPATH", "")])
    )


def test_a_cluster_started_in_the_background_preloads_and_is_stopped(tmp_path, monkeypatch):
    """starting_engine_cluster yields before its engines are up; local engines are forked from
    one process once it has imported `preload` (a module that cannot be imported is left to
    the fit that needs it), so each has it without importing it itself, with numpy's global
    random stream its own; the stop that `using`
    begins has ended, engines, their parent and work directory gone, when the context exits."""
    from evosweep.engines import starting_engine_cluster

    _module_telling_who_imported_it(tmp_path, monkeypatch)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    preload = ("colorsys", "importing_thread", "numpy.random", "evosweep_no_such_module")
    with starting_engine_cluster(2, slurm=False, preload=preload) as starting:
        with starting.using() as engines:
            loaded = engines.client[:].apply_sync(
                lambda: (
                    "colorsys" in sys.modules,
                    sys.modules["importing_thread"].PID,
                    os.getppid(),
                    os.getpid(),
                )
            )
            draws = engines.client[:].apply_sync(lambda: sys.modules["numpy.random"].random())
    assert [have for have, *_ in loaded] == [True, True]
    assert len({imported_by for _, imported_by, _, _ in loaded}) == 1
    assert all(imported_by == parent != pid for _, imported_by, parent, pid in loaded)
    assert draws[0] != draws[1]  # each copy its own random stream, as separate processes
    assert not list(tmp_path.glob("evosweep-ipp-*"))
    for pid in {parent for _, _, parent, _ in loaded} | {pid for *_, pid in loaded}:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@contextlib.contextmanager
def _engine_started_alone(engines, environment=None):
    """One more engine of `engines`' cluster, started by itself (as under srun): its id, once
    registered, and its process, killed on the way out if still running."""
    cluster = engines.cluster
    engine = subprocess.Popen(
        [*ENGINE_CMD, f"--profile-dir={cluster.profile_dir}", f"--cluster-id={cluster.cluster_id}"],
        env=dict(os.environ, **(environment or {})),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        engines.client.wait_for_engines(engines.n_engines + 1, timeout=60)
        yield max(engines.client.ids), engine
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()


def test_an_engine_started_alone_preloads_in_a_thread_of_its_own(tmp_path, monkeypatch):
    """An engine that is not forked (one per srun task) imports `preload` in the background, so
    the import overlaps its registration."""
    _module_telling_who_imported_it(tmp_path, monkeypatch)
    with engine_cluster(1, slurm=False) as engines:
        with _engine_started_alone(engines, {PRELOAD_VARIABLE: "importing_thread"}) as (extra, _):
            imported = engines.client[extra].apply_sync(lambda: __import__("importing_thread").NAME)
    assert imported == PRELOAD_THREAD


def test_engine_exits_zero_when_asked_to_shut_down():
    """Stock ipengine 9.2 exits 1 after a shutdown request, which fails an srun step."""
    with engine_cluster(1, slurm=False) as engines:
        with _engine_started_alone(engines) as (extra, engine):
            # Its reply may never leave: the engine exits at once, as stop_cluster expects.
            engines.client.shutdown(targets=[extra], hub=False, block=False)
            assert engine.wait(timeout=30) == 0


def test_cluster_stops_on_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with engine_cluster(1, slurm=False) as engines:
            pids = engines.engine_pids()
            raise RuntimeError("boom")
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


def test_joblib_completes_when_an_engine_dies(caplog, tmp_path):
    with engine_cluster(2, slurm=False) as engines:
        # Killed while it runs its first task (each engine gets one of the first two).
        killer = EngineKiller(engines.engine_pids()[0], tmp_path)
        with engines.joblib_backend():
            results = Parallel(batch_size=1)(
                delayed(_square)(i, killer.pid, killer.fifo) for i in range(24)
            )
        assert killer.join().startswith("square(")
        assert len(engines.client.ids) == 1
    assert results == [i * i for i in range(24)]
    assert "resubmitting the batch" in caplog.text


@pytest.mark.parametrize("n_engines", [1, 2])
def test_joblib_tasks_run_on_the_engines_not_in_the_client(n_engines):
    """joblib runs n_jobs=1 in the calling process, so a 1-engine cluster must still ask for 2."""
    with engine_cluster(n_engines, slurm=False) as engines, engines.joblib_backend():
        pids = set(Parallel()(delayed(os.getpid)() for _ in range(8)))
        assert pids <= set(engines.engine_pids())
    assert os.getpid() not in pids


def test_a_caller_asking_for_one_job_runs_in_this_process():
    """A forest's own Parallel(n_jobs=1) in the search's refit is serial work, not engine work."""
    with engine_cluster(1, slurm=False) as engines, engines.joblib_backend():
        pids = set(Parallel(n_jobs=1)(delayed(os.getpid)() for _ in range(4)))
    assert pids == {os.getpid()}


class _BatchSizes:
    """An observer recording the size of every batch the backend sends."""

    def __init__(self):
        self.sizes = []

    def start_call(self):
        pass

    def submitted(self, calls):
        self.sizes.append(len(calls))

    def completed(self, n_calls):
        pass


def test_each_parallel_call_starts_from_batches_of_one():
    from joblib.parallel import get_active_backend

    batches = _BatchSizes()
    with engine_cluster(2, slurm=False) as engines, engines.joblib_backend(observer=batches):
        backend, _ = get_active_backend()
        Parallel()(delayed(abs)(-i) for i in range(4))
        backend._effective_batch_size = 64  # what a round of very quick tasks grows it to
        batches.sizes.clear()
        Parallel()(delayed(abs)(-i) for i in range(4))
    assert batches.sizes[0] == 1


def test_batches_grow_by_their_run_time_on_the_engine_not_their_wait(monkeypatch):
    """joblib sizes batches by the durations the backend reports: each must be the batch's run
    time on its engine per call (its wait in the scheduler's queue is not work), told for the
    batch size joblib uses now, so that every finished batch counts."""
    from ipyparallel.client._joblib import IPythonParallelBackend

    from evosweep.engines import backend

    run_times, finished, reported = [], [], []
    run_seconds = backend._Batch.run_seconds
    batch_completed = backend._ViewBackend.batch_completed
    joblib_batch_completed = IPythonParallelBackend.batch_completed

    def record_run(batch):
        run_times.append(run_seconds(batch))
        return run_times[-1]

    def record_finished(self, batch_size, duration):
        finished.append(batch_size)
        batch_completed(self, batch_size, duration)

    def record_report(self, batch_size, duration):
        reported.append((batch_size, duration, self._effective_batch_size))
        joblib_batch_completed(self, batch_size, duration)

    monkeypatch.setattr(backend._Batch, "run_seconds", record_run)
    monkeypatch.setattr(backend._ViewBackend, "batch_completed", record_finished)
    monkeypatch.setattr(IPythonParallelBackend, "batch_completed", record_report)
    with engine_cluster(1, slurm=False) as engines, engines.joblib_backend():
        Parallel()(delayed(abs)(-i) for i in range(400))
    assert run_times and None not in run_times
    assert len(reported) == len(finished) == len(run_times)
    for (size, duration, current), run, calls in zip(reported, run_times, finished, strict=True):
        assert size == current
        assert duration == pytest.approx(run / calls * size)
    # No-op calls take far less than a second: the size doubles at every finished batch (joblib
    # alone learnt from 1 of the 4 batches in flight: 1, 1, 1, 1, 2, 2, 2, 2, 4, ...).
    assert [size for size, _, _ in reported[:6]] == [1, 2, 4, 8, 16, 32]


def test_two_clusters_at_once_do_not_clash():
    with engine_cluster(1, slurm=False) as first, engine_cluster(1, slurm=False) as second:
        assert first.workdir != second.workdir
        assert first.cluster.cluster_id != second.cluster.cluster_id
        assert first.engine_pids() != second.engine_pids()
        for engines in (first, second):
            with engines.joblib_backend():
                ran_on = set(Parallel()(delayed(os.getpid)() for _ in range(4)))
            assert ran_on == set(engines.engine_pids())


def test_no_apply_async_deprecation_warning(recwarn):
    with engine_cluster(1, slurm=False) as engines, engines.joblib_backend():
        Parallel()(delayed(abs)(-i) for i in range(3))
    assert not [w for w in recwarn if "apply_async" in str(w.message)]


def _fails(value):
    raise ValueError(f"bad value {value}")


@pytest.mark.parametrize("n_engines", [1, 2])
def test_task_error_reaches_the_caller_instead_of_hanging(n_engines):
    """ipyparallel's own retries would resubmit a failing task until no engine is left."""
    with engine_cluster(n_engines, slurm=False) as engines, engines.joblib_backend():
        with pytest.raises(RemoteError, match="ValueError: bad value") as raised:
            Parallel(timeout=60)(delayed(_fails)(i) for i in range(2))
    assert raised.value.ename == "ValueError"


def test_a_cluster_starts_where_an_event_loop_runs():
    """Code that runs inside an event loop (Jupyter, Playwright's sync API) starts engines too."""

    async def inside_a_loop():
        with engine_cluster(2, slurm=False) as engines:
            return engines.client[:].apply_sync(os.getpid)

    # In a thread of its own: this one may already run a loop (Playwright's, from other tests).
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        pids = thread.submit(asyncio.run, inside_a_loop()).result()
    assert len(set(pids)) == 2


@pytest.mark.parametrize(
    ("program", "timeout", "when"),
    [
        # exits at once: the wait ends when the engines do, long before the timeout
        ("print('engine cannot start', file=sys.stderr)", 600, "before they exited"),
        (
            "print('engine cannot start', file=sys.stderr, flush=True); signal.pause()",
            1,
            "within 1 s",
        ),
    ],
    ids=["exited", "stuck"],
)
def test_engines_that_never_register_fail_with_their_log_named(
    tmp_path, monkeypatch, program, timeout, when
):
    """A one-line error naming the engine log (kept outside the removed work directory)."""
    from evosweep.engines import EngineStartError, cluster

    broken = [sys.executable, "-c", f"import signal, sys; {program}"]
    monkeypatch.setattr(cluster, "ENGINE_CMD", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    keep = tmp_path / "kept"
    expected = rf"0 of 2 engine\(s\) registered {when}; see the engine log "
    with pytest.raises(EngineStartError, match=expected) as raised:
        with engine_cluster(2, slurm=False, timeout=timeout, keep_logs_in=keep):
            pytest.fail("the cluster must not start")
    assert str(keep) in str(raised.value) and "\n" not in str(raised.value)
    assert "engine cannot start" in "".join(log.read_text() for log in keep.iterdir())
    assert not list(tmp_path.glob("evosweep-ipp-*"))  # the work directory went with it


def test_each_node_forks_the_engine_count_it_was_given():
    assert copies_here("", "") == 0  # an engine alone
    assert copies_here("3", "") == 3  # local
    assert copies_here("node1=4,node2=2,node3=1", "node2") == 2
    with pytest.raises(SystemExit, match="node 'node9' has no engine count"):
        copies_here("node1=4,node2=2", "node9")
