"""Start, secure and stop one private ipyparallel cluster (see the package docstring)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import math
import os
import shutil
import stat
import tempfile
import time
import uuid
from pathlib import Path

import ipyparallel as ipp
from traitlets.config import Config

from evosweep import allocation
from evosweep.engines.backend import BACKEND_NAME, _ViewBackend, joblib_jobs
from evosweep.engines.engine_data import SharedData
from evosweep.engines.placement import engine_placement
from evosweep.engines.programs import (
    CLUSTER_DIR_VARIABLE,
    CONTROLLER_CMD,
    ENGINE_CMD,
    OWNER_VARIABLE,
    PRELOAD_VARIABLE,
    WORKDIR_PREFIX,
)
from evosweep.engines.stopping import stop_cluster
from evosweep.runtime import rundirs
from evosweep.runtime.addresses import LOOPBACK
from evosweep.runtime.signals import stop_on_signals

log = logging.getLogger(__name__)

# The controller's heartbeat period (ms): registration completes on a heartbeat, so
# ipyparallel's 3 s default makes every cluster start seconds slower. An engine counts as dead
# after HEARTBEAT_MISSES missed beats; its heart is a zmq thread that answers while a fit holds
# the GIL, so a busy engine is never taken for a dead one.
HEARTBEAT_MS = 250
HEARTBEAT_MISSES = 20
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PROFILE = "profile"  # the cluster's ipyparallel profile directory, inside its work directory


class EngineStartError(RuntimeError):
    """Engines did not register in time; the message names the engine log."""


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
    def joblib_backend(self, observer=None, journal=None, share_data=True):
        """joblib (and so scikit-learn's n_jobs) runs on this cluster's load-balanced view;
        `observer` (e.g. a search's progress) hears of every Parallel call and batch;
        `journal` (a journal.FitJournal) answers the fits it holds and records the others;
        `share_data`: large arrays go to each engine once (False: with every batch)."""
        from joblib import parallel_config, register_parallel_backend

        view = self.view
        shared = SharedData(self.client) if share_data else None
        register_parallel_backend(
            BACKEND_NAME,
            lambda **kwargs: _ViewBackend(
                view=view, observer=observer, journal=journal, shared=shared, **kwargs
            ),
        )
        try:
            with parallel_config(backend=BACKEND_NAME, n_jobs=self.parallel_jobs):
                yield self
        finally:
            if shared is not None:
                shared.close()

    def preload(self, modules: tuple[str, ...]) -> None:
        """Every engine has imported `modules` (or finishes the import it started): a search's
        first fits would otherwise each wait for scikit-learn's import. One that fails to import is left to the fit that needs it,
        which reports it."""

        def import_modules(names):
            import importlib

            for name in names:
                with contextlib.suppress(ImportError):
                    importlib.import_module(name)

        started = time.perf_counter()
        self.client[:].apply_sync(import_modules, tuple(modules))
        log.info("engines imported %s in %.2f s", ", ".join(modules), time.perf_counter() - started)

    def engine_pids(self) -> list[int]:
        """Process ids of the engines (bench/search.py measures their processes)."""
        return self.client[:].apply_sync(os.getpid)


def _keep_logs(cluster: ipp.Cluster, keep_dir: Path | None) -> list[Path]:
    """Write what the engines printed outside the temporary profile, which is removed.

    Read from the launchers, not the log files: ipyparallel deletes an engine's file as soon
    as the engine exits, keeping its text in the launcher."""
    target = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="evosweep-engines-"))
    target.mkdir(parents=True, exist_ok=True)
    kept = []
    for set_id, launcher in cluster.engines.items():
        output = launcher.get_output()
        if output:
            path = target / f"ipengine-{set_id}.log"
            path.write_text(output)
            kept.append(path)
    return kept


def _cluster_settings(
    workdir: Path,
    owner: dict,
    n_engines: int,
    cpus: int,
    slurm: bool,
    protect: bool,
    timeout: float,
    preload,
):
    """The traitlets Config, controller arguments, launcher options and bind address of a
    cluster whose files live in `workdir`; neither side gives up on the other's registration
    before `timeout` (ipyparallel: the hub drops an engine whose first heartbeat takes 30 s, an
    engine exits when the hub takes 5 s to answer; a loaded node can be that slow)."""
    patience = max(30, math.ceil(timeout))
    engine_env = {variable: str(cpus) for variable in THREAD_VARIABLES}
    engine_env[PRELOAD_VARIABLE] = ",".join(preload)
    config = Config()
    # Engines (local processes or the srun step, which exports its environment to the tasks)
    # get this environment; their BLAS pools then match their share of the cores.
    config.EngineLauncher.environment = engine_env
    config.EngineLauncher.engine_cmd = ENGINE_CMD
    # The nanny only relays signals to single engines, which we never send; a nanny whose
    # engine and controller die together can hang in zmq's shutdown and outlive both.
    config.EngineLauncher.engine_args = [
        "--IPEngine.enable_nanny=False",
        f"--IPEngine.timeout={patience}",
        f"--IPEngine.wait_for_url_file={patience}",
    ]
    config.LocalControllerLauncher.controller_cmd = CONTROLLER_CMD
    controller_args = [
        f"--HeartMonitor.period={HEARTBEAT_MS}",
        f"--HeartMonitor.max_heartmonitor_misses={HEARTBEAT_MISSES}",
        f"--IPController.registration_timeout={patience}",
        # The hub's task records (with every task's buffers, up to 1 GB) serve only the client's
        # get_result/resubmit, which we never call: keeping them is CPU per task and memory.
        "--IPController.db_class=NoDB",
    ]
    if protect:
        # The keys are made by the controller and reach the client and engines through the
        # 0600 connection files (srun engines: $IPP_CONNECTION_INFO); none is on a command line.
        controller_args.append("--IPController.enable_curve=True")
        owner_text = json.dumps(owner)
        engine_env[OWNER_VARIABLE] = owner_text
        config.LocalControllerLauncher.environment = {
            OWNER_VARIABLE: owner_text,
            CLUSTER_DIR_VARIABLE: str(workdir),
        }
    launcher, address, engine_file = engine_placement(
        config, slurm, n_engines, cpus, workdir / PROFILE / "security"
    )
    # Only the engines' sockets listen on `address`; the client (this process, on the
    # controller's host) and the controller's internal monitor stay on loopback.
    controller_args += [
        f"--IPController.engine_ip={address}",
        f"--IPController.client_ip={LOOPBACK}",
        f"--IPController.monitor_ip={LOOPBACK}",
    ]
    return config, controller_args, launcher, address, engine_file


def _new_cluster(
    workdir: Path, n_engines: int, timeout, config, controller_args, launcher, address
):
    """The ipyparallel Cluster (not started) and its profile directory, inside `workdir`."""
    profile_dir = workdir / PROFILE
    for sub in ("security", "log", "pid", "startup"):
        (profile_dir / sub).mkdir(parents=True, exist_ok=True)
    (profile_dir / "security").chmod(stat.S_IRWXU)
    cluster = ipp.Cluster(
        n=n_engines,
        profile_dir=str(profile_dir),
        cluster_id=f"evosweep-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        controller_location=address,
        controller_args=controller_args,
        engine_timeout=max(30, int(timeout)),
        shutdown_atexit=True,
        load_profile=False,
        log_level=logging.WARNING,
        config=config,
        **launcher,
    )
    return cluster, profile_dir


def _start(
    cluster: ipp.Cluster, profile_dir: Path, n_engines: int, timeout, keep_logs_in, engine_file
):
    """Start the controller and the engines; the client once all `n_engines` registered."""
    cluster.start_controller_sync()
    _secure_connection_files(profile_dir)
    try:
        client, error = _run(_start_engines(cluster, n_engines, timeout, engine_file))
    finally:
        _secure_connection_files(profile_dir)
    if error is not None:
        client.close()  # the engines that did register are stopped with the controller
        kept = _keep_logs(cluster, keep_logs_in)
        logs = f"see the engine log {', '.join(map(str, kept))}" if kept else "no engine output"
        when = f"within {timeout:g} s" if isinstance(error, TimeoutError) else "before they exited"
        raise EngineStartError(
            f"engine error: {len(client.ids)} of {n_engines} engine(s) registered {when}; {logs}"
        ) from error
    return client


def _run(coroutine):
    """asyncio.run, also where this thread already runs an event loop (Jupyter, Playwright's
    sync API): then in a thread of its own, as ipyparallel's `_sync` methods do."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


async def _start_engines(cluster: ipp.Cluster, n_engines: int, timeout, engine_file):
    """The client and None once the engines registered, or the client and the error.

    One event loop from the start to the wait: ipyparallel reports engines that exit through
    the loop that started them, so engines that die at start end the wait at once (an
    EngineError) instead of after `timeout` (a TimeoutError). No engine connects before the
    client: it counts engines from the hub's notifications, and one that registered between
    the hub's answer to its connection and its subscription was never counted. Local engines
    start at once and wait for `engine_file` (see placement.engine_placement); srun engines
    start after the client connects."""
    if engine_file is not None:
        await cluster.start_engines(n_engines)
    client = await cluster.connect_client()
    if engine_file is None:
        await cluster.start_engines(n_engines)
    else:
        os.link(cluster.controller.connection_files["engine"], engine_file)
    try:
        await asyncio.wrap_future(client.wait_for_engines(n_engines, timeout=timeout, block=False))
    except (TimeoutError, ipp.error.EngineError) as error:
        return client, error
    return client, None


class StartingCluster:
    """A cluster whose start runs in a thread of its own (see starting_engine_cluster); its
    stop runs in that thread too, queued after the start, so it never races it."""

    def __init__(self, thread: concurrent.futures.Executor, started, stop):
        self._thread = thread
        self._started = started
        self._stop = stop
        self._stopped = None

    def ready(self) -> EngineCluster:
        """The cluster once its engines registered and imported `preload`; the start's error."""
        return self._started.result()

    @contextlib.contextmanager
    def using(self):
        """The ready cluster; on the way out its stop begins, in the background: the engines and
        the controller take a while to exit, and the caller has its outputs to write."""
        try:
            yield self.ready()
        finally:
            self.stop(wait=False)

    def stop(self, wait: bool = True) -> None:
        if self._stopped is None:
            self._stopped = self._thread.submit(self._stop, self._started)
        if wait:
            self._stopped.result()


def _ready_cluster(
    cluster, profile_dir: Path, n_engines: int, timeout, keep_logs_in, where, engine_file
):
    """The EngineCluster once its engines registered, with its start time."""
    started = time.perf_counter()
    client = _start(cluster, profile_dir, n_engines, timeout, keep_logs_in, engine_file)
    engines = EngineCluster(cluster, client, n_engines, profile_dir.parent)
    engines.start_seconds = time.perf_counter() - started
    log.info("%d engine(s) ready in %.2f s (%s)", n_engines, engines.start_seconds, where)
    return engines


@contextlib.contextmanager
def starting_engine_cluster(
    n_engines: int | None = None,
    *,
    timeout: float = 60.0,
    slurm: bool | None = None,
    keep_logs_in: str | Path | None = None,
    tasks: int | None = None,
    cpus_per_task: int | None = None,
    protect: bool = True,
    preload: tuple[str, ...] = (),
):
    """Start a private cluster of `n_engines` engines in the background and yield a
    StartingCluster at once, so the caller's own work (imports, data, building its search)
    overlaps the engines' start; always stop the cluster on the way out, once its start ended.

    n_engines: default 1 locally, SLURM_NTASKS inside a Slurm allocation.
    slurm: force (True) or forbid (False) srun engines; default: detect the allocation.
    keep_logs_in: where engine logs are copied if the engines fail to start.
    tasks, cpus_per_task: the Slurm job's, when known (e.g. from snakemake's resources).
    protect: False turns CURVE and the orphan watchdogs off, only to measure their cost.
    preload: modules the engines import (the estimator's), not in a first fit: each node's
    engines are forked once they are imported, and the cluster is ready once every engine has
    them.
    """
    slurm = allocation.spans_tasks(tasks) if slurm is None else slurm
    if n_engines is None:
        n_engines = allocation.slurm_tasks(tasks) if slurm else 1
    owner = rundirs.owner_record()
    # TMPDIR read now (tempfile caches it): a Slurm job's, or a test's, own temporary place.
    temporary = Path(os.environ.get("TMPDIR") or tempfile.gettempdir())
    workdir = rundirs.create(temporary, WORKDIR_PREFIX, owner)
    cpus = allocation.cpus_per_worker(cpus_per_task)
    config, controller_args, launcher, address, engine_file = _cluster_settings(
        workdir, owner, n_engines, cpus, slurm, protect, timeout, preload
    )
    cluster, profile_dir = _new_cluster(
        workdir, n_engines, timeout, config, controller_args, launcher, address
    )

    def start() -> EngineCluster:
        where = f"{'srun' if slurm else 'local'}, controller {address}"
        engines = _ready_cluster(
            cluster, profile_dir, n_engines, timeout, keep_logs_in, where, engine_file
        )
        if preload:
            engines.preload(preload)
        return engines

    def stop(started: concurrent.futures.Future) -> None:
        stop_cluster(cluster, None if started.exception() else started.result().client, slurm)
        shutil.rmtree(workdir, ignore_errors=True)

    # A stop signal (Slurm's time limit, Snakemake's cancel) raises here, in the main thread;
    # the stop then waits for the start to end (registration is bounded by `timeout`).
    with stop_on_signals(), concurrent.futures.ThreadPoolExecutor(1, "evosweep-engines") as thread:
        starting = StartingCluster(thread, thread.submit(start), stop)
        try:
            yield starting
        finally:
            starting.stop()


@contextlib.contextmanager
def engine_cluster(n_engines: int | None = None, **options):
    """Start a private cluster (options: starting_engine_cluster's), yield the EngineCluster
    once its engines registered, always stop it."""
    with starting_engine_cluster(n_engines, **options) as starting:
        yield starting.ready()
