"""One private ipyparallel cluster per job, stopped on every exit path.

    with engine_cluster(n_engines) as engines:
        with engines.joblib_backend():
            GridSearchCV(..., n_jobs=-1).fit(X, y)

Locally every socket of the cluster listens on 127.0.0.1 and `n` engines start as local
processes. Inside a Slurm allocation with more than one task, only the controller's
engine-facing sockets listen on the job's cluster address (the client's, the controller's
internal ones and the engines' own stay on loopback), and the engines start as one `srun` step,
one engine per task (ipyparallel's own Slurm launchers would submit new batch jobs, and its MPI
launcher needs mpi4py). Each cluster has its own profile directory and cluster id under a fresh
temporary directory, so concurrent jobs never share state.

Every connection uses CurveZMQ (encrypted; only a peer holding the controller's public key,
which is kept in the 0600 connection files, completes a handshake), and every message carries
the cluster's HMAC signature, which ipyparallel checks before it unpickles anything. The
controller, its schedulers and the engines exit on their own when the process holding
engine_cluster dies, by any signal, SIGKILL included (GUARD, CONTROLLER_MAIN); a directory left
by a killed owner is removed by the next engine_cluster on the same host.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path

import ipyparallel as ipp
from ipyparallel.client._joblib import IPythonParallelBackend
from ipyparallel.cluster.launcher import EngineLauncher, MPILauncher
from traitlets import List, Unicode
from traitlets.config import Config

from evosweep import allocation

log = logging.getLogger(__name__)

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
# GUARD (below) comes first: an engine exits when the process that owns the cluster is gone
# (same host) or when its controller is unreachable (any node).
ENGINE_MAIN = """\
from ipyparallel.engine import app

watch_owner(lambda: leave("the process that owns this cluster is gone"), strict=False)


class IPEngine(app.IPEngine):
    def load_connection_file(self):
        super().load_connection_file()
        if os.environ.get(OWNER_VARIABLE):
            info = self.connection_info
            watch_controller(f"{info['interface']}:{info['hb_ping']}", self.curve_serverkey)

    def start(self):
        try:
            super().start()
        except RuntimeError:
            if getattr(self.kernel, "_shutdown_message", None) is None:
                raise  # not a requested shutdown


IPEngine.launch_instance()
"""

# Seconds an engine stays without a connection to its controller (zmq heartbeats every second
# check it) before it counts the controller as gone and exits: twice the controller's own
# verdict on an engine (HEARTBEAT_MISSES beats). Watched in a thread of its own, so a task that
# holds the engine's main thread cannot delay it.
CONTROLLER_LOST_SECONDS = 10
OWNER_VARIABLE = "EVOSWEEP_CLUSTER_OWNER"
CLUSTER_DIR_VARIABLE = "EVOSWEEP_CLUSTER_DIR"
OWNER_FILE = "owner.json"
WORKDIR_PREFIX = "evosweep-ipp-"
LOOPBACK = "127.0.0.1"

# Source that starts the controller's and the engines' programs: the owner's identity (host,
# boot, pid, start time: a pid alone may be reused), a thread that calls back when the owner
# exits (a pidfd: no polling), and one that exits when the controller is unreachable.
GUARD = f"""\
import json
import os
import select
import socket
import sys
import threading
import time

OWNER_VARIABLE = {OWNER_VARIABLE!r}
CONTROLLER_LOST_SECONDS = {CONTROLLER_LOST_SECONDS}


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            return file.read().strip()
    except OSError:
        return ""


def start_ticks(pid):
    try:
        with open(f"/proc/{{pid}}/stat") as file:
            return int(file.read().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def identity(pid):
    return {{"host": socket.gethostname(), "boot": boot_id(), "pid": pid,
            "start": start_ticks(pid)}}


def on_this_host(owner):
    return owner.get("host") == socket.gethostname() and owner.get("boot") == boot_id()


def is_running(owner):
    return start_ticks(owner["pid"]) == owner["start"]


def leave(reason):
    sys.__stderr__.write(f"evosweep: {{reason}}; exiting\\n")
    sys.__stderr__.flush()
    os._exit(1)


def watch_owner(on_gone, strict):
    # strict: the owner must be visible (a process on its host); else (an engine, maybe on
    # another node or in another pid namespace) an invisible owner leaves it to the heartbeat.
    text = os.environ.get(OWNER_VARIABLE)
    if not text:
        return
    owner = json.loads(text)
    if not on_this_host(owner):
        return
    try:
        pidfd = os.pidfd_open(owner["pid"])
    except ProcessLookupError:
        pidfd = None
    except (AttributeError, OSError):  # no pidfd before Linux 5.3: poll instead
        pidfd = -1
    if pidfd is None or not is_running(owner):
        if strict:
            on_gone()
        return

    def wait():
        if pidfd >= 0:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)  # readable once the process has exited
            poller.poll()
        else:
            while is_running(owner):
                time.sleep(1)
        on_gone()

    threading.Thread(target=wait, name="evosweep-owner", daemon=True).start()


def watch_controller(url, serverkey):
    # A connection to the controller's ping socket that subscribes to nothing: zmq's own
    # heartbeat (in its I/O thread) keeps it checked, and this thread wakes only when it
    # drops, never per ping, so it costs a busy engine no GIL hand-offs.
    def wait():
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        link = zmq.Context().socket(zmq.SUB)
        link.linger = 0
        link.heartbeat_ivl = 1000
        link.heartbeat_timeout = CONTROLLER_LOST_SECONDS * 1000
        link.reconnect_ivl = 1000
        if serverkey:
            link.curve_publickey, link.curve_secretkey = zmq.curve_keypair()
            link.curve_serverkey = serverkey
        events = link.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        link.connect(url)
        connected = False
        while events.poll(None if connected else CONTROLLER_LOST_SECONDS * 1000):
            connected = recv_monitor_message(events)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
        leave(f"the controller has been unreachable for {{CONTROLLER_LOST_SECONDS}} s")

    threading.Thread(target=wait, name="evosweep-controller", daemon=True).start()

"""

# The controller program: ipyparallel's ipcontroller with a per-cluster HMAC key set in the
# process (never on a command line: ipyparallel drops the signature when CURVE is on unless a
# key is configured, and the key is what authenticates every message before it is unpickled),
# children that die with it, and an exit (removing the cluster's directory) when the owner is.
CONTROLLER_MAIN = f"""\
import ctypes
import multiprocessing
import secrets
import shutil
import signal

from ipyparallel.controller.app import IPController
from traitlets.config import Config

PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None, use_errno=True)
forking = [os.getpid()]


def remember_parent():
    forking[0] = os.getpid()


def die_with_parent():
    # schedulers and the heart monitor are forked children: SIGKILL them when we die
    libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL))
    if os.getppid() != forking[0]:
        os._exit(1)


def owner_gone():
    for child in multiprocessing.active_children():
        child.kill()
    directory = os.environ.get({CLUSTER_DIR_VARIABLE!r})
    if directory and os.path.exists(os.path.join(directory, {OWNER_FILE!r})):
        shutil.rmtree(directory, ignore_errors=True)
    leave("the process that owns this cluster is gone")


os.register_at_fork(before=remember_parent, after_in_child=die_with_parent)
watch_owner(owner_gone, strict=True)
config = Config()
config.Session.key = secrets.token_hex(32).encode("ascii")
IPController.launch_instance(config=config)
"""
ENGINE_CMD = [sys.executable, "-c", GUARD + ENGINE_MAIN]
CONTROLLER_CMD = [sys.executable, "-c", GUARD + CONTROLLER_MAIN]

# The owner's side of GUARD: the same functions, from the same source.
_guard = types.ModuleType("evosweep_cluster_guard")
exec(compile(GUARD, "<evosweep cluster guard>", "exec"), _guard.__dict__)


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

    def __init__(self, view, observer=None, journal=None, **kwargs):
        super().__init__(view=view, **kwargs)
        # Told of each Parallel call, each batch's calls and each finished batch (progress).
        self.observer = observer
        # Answers the fits it holds and records the others as they come back (resume).
        self.journal = journal

    def effective_n_jobs(self, n_jobs):
        # The stock backend answers len(view), which is 1 for a 1-engine cluster.
        return joblib_jobs(len(self._view))

    def start_call(self):
        if self.observer is not None:
            self.observer.start_call()

    def batch_completed(self, batch_size, duration):
        # A batch the journal answered ran on no engine: its time must not grow the batches.
        if self.journal is None or not self.journal.answering():
            super().batch_completed(batch_size, duration)

    def submit(self, func, callback=None):
        observer = self.observer
        if observer is not None:
            observer.submitted(func.items)

        def done(future):
            if callback is not None:
                callback(future)
            if observer is not None:
                observer.completed(len(func))

        def send(batch):
            return _Batch(self._view, batch, retries=max(1, len(self._view)))

        if self.journal is not None:
            return self.journal.submit(func, send, done)
        batch = send(func)
        batch.future.add_done_callback(done)
        return batch

    def retrieve_result(self, batch, timeout=None):
        return batch.get(timeout)


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
    def joblib_backend(self, observer=None, journal=None):
        """joblib (and so scikit-learn's n_jobs) runs on this cluster's load-balanced view;
        `observer` (e.g. a search's progress) hears of every Parallel call and batch;
        `journal` (a journal.FitJournal) answers the fits it holds and records the others."""
        from joblib import parallel_config, register_parallel_backend

        view = self.view
        register_parallel_backend(
            BACKEND_NAME,
            lambda **kwargs: _ViewBackend(view=view, observer=observer, journal=journal, **kwargs),
        )
        with parallel_config(backend=BACKEND_NAME, n_jobs=self.parallel_jobs):
            yield self

    def engine_pids(self) -> list[int]:
        """Process ids of the engines (for tests that kill one)."""
        return self.client[:].apply_sync(os.getpid)


def _write_owner(workdir: Path, owner: dict) -> None:
    """Record who owns `workdir`, atomically, so a later run can tell a stale one."""
    partial = workdir / f".{OWNER_FILE}"
    partial.write_text(json.dumps(owner))
    partial.rename(workdir / OWNER_FILE)


def _remove_stale_workdirs(parent: Path) -> None:
    """Remove cluster directories (keys, logs) left by owners on this host that are gone,
    e.g. killed with SIGKILL together with their controller."""
    for candidate in parent.glob(f"{WORKDIR_PREFIX}*"):
        try:
            if candidate.stat().st_uid != os.getuid():
                continue
            owner = json.loads((candidate / OWNER_FILE).read_text())
            stale = _guard.on_this_host(owner) and not _guard.is_running(owner)
        except (OSError, ValueError, LookupError, TypeError, AttributeError):
            continue  # not ours, being created, or from an older version
        if stale:
            log.info("removing %s, left by process %s", candidate, owner.get("pid"))
            shutil.rmtree(candidate, ignore_errors=True)


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
    protect: bool = True,
):
    """Start a private cluster of `n_engines` engines, yield an EngineCluster, always stop it.

    n_engines: default 1 locally, SLURM_NTASKS inside a Slurm allocation.
    slurm: force (True) or forbid (False) srun engines; default: detect the allocation.
    keep_logs_in: where engine logs are copied if the engines fail to start.
    tasks, cpus_per_task: the Slurm job's, when known (e.g. from snakemake's resources).
    protect: False turns CURVE and the orphan watchdogs off, only to measure their cost.
    """
    slurm = allocation.spans_tasks(tasks) if slurm is None else slurm
    if n_engines is None:
        n_engines = allocation.slurm_tasks(tasks) if slurm else 1
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=os.environ.get("TMPDIR")))
    owner = _guard.identity(os.getpid())
    _write_owner(workdir, owner)
    _remove_stale_workdirs(workdir.parent)
    profile_dir = workdir / "profile"
    for sub in ("security", "log", "pid", "startup"):
        (profile_dir / sub).mkdir(parents=True, exist_ok=True)
    (profile_dir / "security").chmod(stat.S_IRWXU)
    cpus = allocation.cpus_per_worker(cpus_per_task)
    engine_env = {variable: str(cpus) for variable in THREAD_VARIABLES}
    config = Config()
    # Engines (local processes or the srun step, which exports its environment to the tasks)
    # get this environment; their BLAS pools then match their share of the cores.
    config.EngineLauncher.environment = engine_env
    config.EngineLauncher.engine_cmd = ENGINE_CMD
    config.LocalControllerLauncher.controller_cmd = CONTROLLER_CMD
    controller_args = [
        f"--HeartMonitor.period={HEARTBEAT_MS}",
        f"--HeartMonitor.max_heartmonitor_misses={HEARTBEAT_MISSES}",
    ]
    if protect:
        # The keys are made by the controller and reach the client and engines through the
        # 0600 connection files (engines: $IPP_CONNECTION_INFO); none is on a command line.
        controller_args.append("--IPController.enable_curve=True")
        owner_text = json.dumps(owner)
        engine_env[OWNER_VARIABLE] = owner_text
        config.LocalControllerLauncher.environment = {
            OWNER_VARIABLE: owner_text,
            CLUSTER_DIR_VARIABLE: str(workdir),
        }
    kwargs = {}
    if slurm:
        kwargs["engine_launcher_class"] = SrunEngineSetLauncher
        address = allocation.cluster_address()
        # One step, one engine per task, each engine bound to its task's cpus; an engine
        # that exits must not take the others down.
        config.SrunEngineSetLauncher.mpi_args = [
            f"--cpus-per-task={cpus}",
            "--kill-on-bad-exit=0",
            "--exact",
        ]
    else:
        address = LOOPBACK
    # Only the engines' sockets listen on `address`; the client (this process, on the
    # controller's host) and the controller's internal monitor stay on loopback.
    controller_args += [
        f"--IPController.engine_ip={address}",
        f"--IPController.client_ip={LOOPBACK}",
        f"--IPController.monitor_ip={LOOPBACK}",
    ]
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
