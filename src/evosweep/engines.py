"""One private ipyparallel cluster per job, stopped on every exit path.

    with engine_cluster(n_engines) as engines:
        with engines.joblib_backend():
            GridSearchCV(..., n_jobs=-1).fit(X, y)

Locally the controller listens on 127.0.0.1 and `n` engines start as local processes. Inside a
Slurm allocation with more than one task, the controller binds the batch host's address and the
engines start as one `srun` step, one engine per task (ipyparallel's own Slurm launchers would
submit new batch jobs, and its MPI launcher needs mpi4py). Each cluster has its own profile
directory and cluster id under a fresh temporary directory, so concurrent jobs never share state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
import uuid
from pathlib import Path

import ipyparallel as ipp
from ipyparallel.client._joblib import IPythonParallelBackend
from ipyparallel.cluster.launcher import EngineLauncher, MPILauncher
from traitlets import List, Unicode
from traitlets.config import Config

log = logging.getLogger("evosweep")

# The controller's heartbeat period (ms). Registration completes on a heartbeat, so
# ipyparallel's default (3000 ms) makes 2 engines take 6.5 s; 250 ms brings it under 3 s
# (start times barely differ between 100 and 300 ms, and each beat costs controller CPU).
# Missed beats before an engine counts as dead: 20 x 250 ms = 5 s. The engines' heart is a
# zmq device thread that answers even while a fit holds the GIL, so a busy node is no risk.
HEARTBEAT_MS = 250
HEARTBEAT_MISSES = 20
BACKEND_NAME = "evosweep-ipyparallel"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Seconds the engines (and so the srun step) get to exit on their own after a shutdown request.
ENGINE_EXIT_SECONDS = 5
SRUN_STEP_EXIT_SECONDS = 30

# The engine program: ipyparallel's ipengine, except that a requested shutdown exits 0.
# ipyparallel 9.2's IPEngine.start runs `loop.run_sync(...)`; a shutdown_request stops that
# loop, so tornado raises "Event loop stopped before Future completed." and every engine
# exits 1 (silently: its stderr is rerouted to the client). On Slurm the engines' srun step
# then ends FAILED (ExitCode 1:0). Any other error, and a SIGTERM, still exit non-zero.
# Passed as `python -c` so the engines need nothing but ipyparallel (no evosweep import).
ENGINE_MAIN = """\
from ipyparallel.engine import app


class IPEngine(app.IPEngine):
    def start(self):
        try:
            super().start()
        except RuntimeError:
            if getattr(self.kernel, "_shutdown_message", None) is None:
                raise  # not a requested shutdown


IPEngine.launch_instance()
"""
ENGINE_CMD = [sys.executable, "-c", ENGINE_MAIN]


class EngineStartError(RuntimeError):
    """Engines did not register in time; the message names the engine log."""


class SrunEngineSetLauncher(MPILauncher, EngineLauncher):
    """`srun -n N [srun args] ipengine ...` inside the current allocation: one engine per task.

    Unlike MPIEngineSetLauncher it does not pass `--mpi` to ipengine (no mpi4py needed).
    """

    mpi_cmd = List(["srun"], config=True)
    name = Unicode("ipengine-srun")

    @property
    def program(self):
        return self.engine_cmd

    @property
    def program_args(self):
        return self.cluster_args + self.engine_args

    def start(self, n):
        self.n = n
        return super().start(n)


def joblib_jobs(n_engines: int) -> int:
    """Jobs joblib keeps in flight: one per engine, but never 1, because joblib runs n_jobs=1
    in the calling process whatever the backend, and a 1-engine cluster must do the work."""
    return max(2, n_engines)


class _Batch:
    """A batch of joblib calls on the load-balanced view, resubmitted if its engine dies.

    Retrying here, not with the view's `retries`: the scheduler also retries a task that merely
    raised, each time on another engine, and once every engine has failed it the task waits for
    a new engine forever, so one bad fit would hang the search.
    """

    def __init__(self, view, func, retries: int):
        self._view = view
        self._func = func
        self._retries_left = retries
        self.future = view.apply_async(func)

    def get(self, timeout=None):
        while True:
            try:
                return self.future.get(timeout)
            except ipp.error.RemoteError as error:
                if error.ename != "EngineError" or self._retries_left <= 0:
                    raise
                self._retries_left -= 1
                log.warning("an engine died during a batch of tasks; resubmitting the batch")
                self.future = self._view.apply_async(self._func)


class _ViewBackend(IPythonParallelBackend):
    """ipyparallel 9.2's joblib backend on joblib's current `submit` API (the stock one
    implements the deprecated `apply_async`: a DeprecationWarning on every Parallel call)."""

    # A task travels client -> scheduler -> engine and back, dearer than a loky pipe, so joblib's
    # auto-batching aims at batches of 1-2 s instead of 0.2-2 s (the 2 s cap bounds the tail).
    MIN_IDEAL_BATCH_DURATION = 1.0
    supports_timeout = True  # retrieve_result honours Parallel(timeout=...)

    def effective_n_jobs(self, n_jobs):
        # The stock backend answers len(view), which is 1 for a 1-engine cluster.
        return joblib_jobs(len(self._view))

    def submit(self, func, callback=None):
        batch = _Batch(self._view, func, retries=max(1, len(self._view)))
        if callback is not None:
            batch.future.add_done_callback(callback)
        return batch

    def retrieve_result(self, batch, timeout=None):
        return batch.get(timeout)


def slurm_tasks(tasks: int | None = None) -> int:
    """The job's task count: `tasks` when the caller knows it (snakemake's slurm-jobstep plugin
    strips SLURM_NTASKS from the rule's environment), else SLURM_NTASKS."""
    return int(tasks) if tasks else int(os.environ.get("SLURM_NTASKS", "1"))


def in_slurm_allocation(tasks: int | None = None) -> bool:
    """True inside a Slurm job with more than one task (engines then go through srun)."""
    return bool(os.environ.get("SLURM_JOB_ID")) and slurm_tasks(tasks) > 1


def _batch_host_address() -> str:
    """The address engines on other nodes can reach: the batch host's, never all interfaces."""
    host = socket.gethostname()
    try:
        return socket.gethostbyname(host)
    except OSError:
        return "127.0.0.1"


def _cpus_per_engine(slurm: bool, cpus_per_task: int | None) -> int:
    if cpus_per_task:
        return int(cpus_per_task)
    if slurm:
        return int(os.environ.get("SLURM_CPUS_PER_TASK", "1"))
    return 1


@contextlib.contextmanager
def _sigterm_raises():
    """Turn SIGTERM (Slurm's time limit, snakemake's cancel) into an exception so the
    `finally` blocks stop the cluster; restore the previous handler afterwards."""
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread: the caller owns signal handling
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _secure_connection_files(profile_dir: Path) -> None:
    for path in (profile_dir / "security").glob("*.json"):
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


class EngineCluster:
    """A running cluster: `client`, a load-balanced `view`, `n_engines`, `start_seconds`."""

    def __init__(self, cluster: ipp.Cluster, client: ipp.Client, n_engines: int, workdir: Path):
        self.cluster = cluster
        self.client = client
        self.n_engines = n_engines
        self.workdir = workdir
        self.start_seconds = 0.0
        self.view = client.load_balanced_view()
        # Wait for it: an unawaited reply arrives later as a "got stale result" line.
        self.client[:].use_cloudpickle().get(timeout=30)

    @property
    def parallel_jobs(self) -> int:
        """n_jobs for joblib (and scikit-learn's n_jobs) on this cluster."""
        return joblib_jobs(self.n_engines)

    @contextlib.contextmanager
    def joblib_backend(self):
        """joblib (and so scikit-learn's n_jobs) runs on this cluster's load-balanced view."""
        from joblib import parallel_config, register_parallel_backend

        view = self.view
        register_parallel_backend(BACKEND_NAME, lambda **kwargs: _ViewBackend(view=view, **kwargs))
        with parallel_config(backend=BACKEND_NAME, n_jobs=self.parallel_jobs):
            yield self

    def engine_pids(self) -> list[int]:
        """Process ids of the engines (for tests that kill one)."""
        return self.client[:].apply_sync(os.getpid)


def _engine_logs(profile_dir: Path) -> list[Path]:
    return sorted((profile_dir / "log").glob("ipengine*.log"))


def _keep_logs(profile_dir: Path, keep_dir: Path | None) -> list[Path]:
    """Copy engine logs out of the temporary profile before it is removed."""
    target = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="evosweep-engines-"))
    target.mkdir(parents=True, exist_ok=True)
    kept = []
    for path in _engine_logs(profile_dir):
        shutil.copy(path, target / path.name)
        kept.append(target / path.name)
    return kept


@contextlib.contextmanager
def engine_cluster(
    n_engines: int | None = None,
    *,
    timeout: float = 60.0,
    slurm: bool | None = None,
    keep_logs_in: str | Path | None = None,
    tasks: int | None = None,
    cpus_per_task: int | None = None,
):
    """Start a private cluster of `n_engines` engines, yield an EngineCluster, always stop it.

    n_engines: default 1 locally, SLURM_NTASKS inside a Slurm allocation.
    slurm: force (True) or forbid (False) srun engines; default: detect the allocation.
    keep_logs_in: where engine logs are copied if the engines fail to start.
    tasks, cpus_per_task: the Slurm job's, when known (e.g. from snakemake's resources).
    """
    slurm = in_slurm_allocation(tasks) if slurm is None else slurm
    if n_engines is None:
        n_engines = slurm_tasks(tasks) if slurm else 1
    workdir = Path(tempfile.mkdtemp(prefix="evosweep-ipp-", dir=os.environ.get("TMPDIR")))
    profile_dir = workdir / "profile"
    for sub in ("security", "log", "pid", "startup"):
        (profile_dir / sub).mkdir(parents=True, exist_ok=True)
    (profile_dir / "security").chmod(stat.S_IRWXU)
    cpus = _cpus_per_engine(slurm, cpus_per_task)
    engine_env = {variable: str(cpus) for variable in THREAD_VARIABLES}
    config = Config()
    # Engines (local processes or the srun step, which exports its environment to the tasks)
    # get this environment; their BLAS pools then match their share of the cores.
    config.EngineLauncher.environment = engine_env
    config.EngineLauncher.engine_cmd = ENGINE_CMD
    kwargs = {}
    if slurm:
        kwargs["engine_launcher_class"] = SrunEngineSetLauncher
        address = _batch_host_address()
        # One step, one engine per task, each engine bound to its task's cpus; an engine
        # that exits must not take the others down.
        config.SrunEngineSetLauncher.mpi_args = [
            f"--cpus-per-task={cpus}",
            "--kill-on-bad-exit=0",
            "--exact",
        ]
    else:
        address = "127.0.0.1"
    cluster = ipp.Cluster(
        n=n_engines,
        profile_dir=str(profile_dir),
        cluster_id=f"evosweep-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        controller_ip=address,
        controller_location=address,
        controller_args=[
            f"--HeartMonitor.period={HEARTBEAT_MS}",
            f"--HeartMonitor.max_heartmonitor_misses={HEARTBEAT_MISSES}",
        ],
        engine_timeout=max(30, int(timeout)),
        shutdown_atexit=True,
        load_profile=False,
        log_level=logging.WARNING,
        config=config,
        **kwargs,
    )
    client = None
    engines = None
    with _sigterm_raises():
        try:
            started = time.perf_counter()
            cluster.start_controller_sync()
            _secure_connection_files(profile_dir)
            cluster.start_engines_sync(n_engines)
            client = cluster.connect_client_sync()
            try:
                client.wait_for_engines(n_engines, timeout=timeout)
            except TimeoutError as error:
                kept = _keep_logs(profile_dir, keep_logs_in)
                where = ", ".join(map(str, kept)) or f"{profile_dir / 'log'} (no engine log)"
                raise EngineStartError(
                    f"engine error: {len(client.ids)} of {n_engines} engine(s) registered "
                    f"within {timeout:g} s; see the engine log {where}"
                ) from error
            _secure_connection_files(profile_dir)
            engines = EngineCluster(cluster, client, n_engines, workdir)
            engines.start_seconds = time.perf_counter() - started
            log.info(
                "%d engine(s) ready in %.2f s (%s, controller %s)",
                n_engines,
                engines.start_seconds,
                "srun" if slurm else "local",
                address,
            )
            yield engines
        finally:
            _stop(cluster, client, slurm)
            shutil.rmtree(workdir, ignore_errors=True)


def _stop(cluster: ipp.Cluster, client: ipp.Client | None, slurm: bool) -> None:
    """Ask the engines to exit (they exit 0), let them and the srun step end on their own,
    then stop the controller and whatever is left.

    The launchers are only signalled (by stop_cluster_sync) if they have not exited in time:
    a signalled srun step ends CANCELLED/FAILED in sacct, one that ends by itself COMPLETED.
    The controller stops last, so engines never lose it while shutting down.
    """
    if client is not None:
        with contextlib.suppress(Exception):
            if client.ids:
                # No waiting for replies: an engine that dies first would never send one.
                # Waiting for the processes below is bounded.
                client.shutdown(targets="all", hub=False, block=False)
        with contextlib.suppress(Exception):
            _wait_engine_launchers(
                cluster, timeout=SRUN_STEP_EXIT_SECONDS if slurm else ENGINE_EXIT_SECONDS
            )
        with contextlib.suppress(Exception):
            client.close()
    with contextlib.suppress(Exception):
        cluster.stop_cluster_sync()


def _engine_processes(cluster: ipp.Cluster) -> list:
    """The launchers' processes: one per local engine, or the one srun process."""
    processes = []
    for engine_set in cluster.engines.values():
        launchers = getattr(engine_set, "launchers", None)
        if launchers is not None:
            processes += [launcher.process for launcher in launchers.values()]
        else:
            processes.append(getattr(engine_set, "process", None))
    return [process for process in processes if process is not None]


def _wait_engine_launchers(cluster: ipp.Cluster, timeout: float) -> bool:
    """Wait up to `timeout` s for every engine launcher process to exit; True if all did."""
    deadline = time.monotonic() + timeout
    done = True
    for process in _engine_processes(cluster):
        try:
            code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # psutil.TimeoutExpired, or the process is gone
            done = done and not _is_running(process)
            continue
        if code:  # None: already reaped by the launcher's own wait thread
            log.warning("engine launcher %s exited with code %s", process.pid, code)
    if not done:
        log.warning("engines did not exit within %g s of the shutdown request", timeout)
    return done


def _is_running(process) -> bool:
    try:
        return process.is_running() and process.status() != "zombie"
    except Exception:
        return False
