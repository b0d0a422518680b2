"""Start a SCOOP run ourselves: one broker and the workers, bound to one address, CURVE-authenticated.

`python -m scoop` chains launcher -> broker -> a per-host launcher -> workers (about half a
second), lets its broker and workers listen on every interface with no authentication, and
leaves them running when its parent is killed. A ScoopRun instead, from the launching process:

- makes a per-run directory (0700) holding a fresh CURVE key pair (files 0600): the processes get
  the directory's path as an argument, never a key; it is removed at the end, and a run that
  finds a directory whose owner process is gone removes it (evosweep.runtime.rundirs);
- starts the broker (`scoop_secure broker`) bound to `address` (127.0.0.1 on one host, the
  batch node's cluster address in a Slurm job), reads its two ports, then starts the origin and
  this node's other workers as direct children (`scoop_secure worker`, SCOOP's own bootstrap);
- inside a Slurm job, starts the workers of each other node as one `srun` step per node, the
  argv passed as a list (no shell sees it);
- has every local child die with the launching process (the parent-death signal, set by the
  child itself; the srun clients get it from `setpriv`); a worker on another node watches the
  broker's port and exits when it stops answering;
- supervises the run from two threads (scoop_supervisor): ends what is left once the origin or
  the broker ends, merges every process's stderr into lines (`on_line`, or `lines()`), and tells
  the origin once the other workers are ready: a program can warm its workers up when SCOOP
  imports it there, and start its clock only when they all take tasks.

    python -m evosweep.evolve.scoop_launcher -n 2 [--address ADDR] [--no-curve] -- SCRIPT ARGS...
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import zmq
import zmq.auth

from evosweep.allocation import spread
from evosweep.evolve import scoop_secure
from evosweep.evolve.scoop_supervisor import KILL_SECONDS, Supervisor
from evosweep.runtime import rundirs, signals
from evosweep.runtime.addresses import LOOPBACK, is_wildcard
from evosweep.runtime.lifetime import die_with_parent

SECURE_MODULE = "evosweep.evolve.scoop_secure"
RUN_PREFIX = "run-"
# Signals on which the command-line launcher stops the run in order.
STOP_SIGNALS = (*signals.STOP_SIGNALS, signal.SIGHUP)
BROKER_START_SECONDS = 60.0


class ScoopLaunchError(RuntimeError):
    """The broker or the workers could not be started."""


def default_runtime_root() -> Path:
    """Per-user root for run directories on this host (a run spanning nodes needs a shared one)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return Path(base) / f"evosweep-scoop-{os.getuid()}"


class ScoopRun:
    """One SCOOP run of `program` (a script and its arguments) on `workers` workers.

    address: the one address the broker binds and the workers reach it at.
    hosts: this node first, then the others of a Slurm job; the workers are spread over them
    round-robin and those of the other nodes start through srun. None: all on this node.
    slots: the workers each host's share of the job holds (Slurm's CPUs per node); None: even.
    protect: CURVE on every socket (off only to measure its cost).
    own_group: the processes form their own process group (led by the broker); False: they
    stay in the caller's, e.g. when the caller leads a session made for the run.
    on_line: called with each line of the processes' stderr (in a thread of the run); None:
    `lines()` yields them.
    """

    def __init__(
        self,
        program: Sequence[str],
        workers: int,
        *,
        address: str = LOOPBACK,
        hosts: Sequence[str] | None = None,
        slots: Sequence[int] | None = None,
        runtime_root: Path | None = None,
        protect: bool = True,
        env: dict | None = None,
        cwd: str | Path | None = None,
        python: str = sys.executable,
        cpus_per_worker: int = 1,
        own_group: bool = True,
        on_line: Callable[[str], None] | None = None,
    ):
        if is_wildcard(address):
            raise ScoopLaunchError(f"refusing to bind SCOOP to the wildcard {address!r}")
        self.program = [str(part) for part in program]
        self.workers = max(1, int(workers))
        self.address = address
        self.placement = spread(self.workers, list(hosts), slots) if hosts else [("", self.workers)]
        self.runtime_root = Path(runtime_root or default_runtime_root()).absolute()
        self.protect = protect
        self.env = dict(os.environ if env is None else env)
        self.cwd = str(cwd or os.getcwd())
        self.python = python
        self.cpus_per_worker = cpus_per_worker
        self.own_group = own_group
        self._on_line = on_line
        self.run_dir: Path | None = None  # holds the run's keys
        self.broker: subprocess.Popen | None = None
        self.origin: subprocess.Popen | None = None
        self.workers_here: list[subprocess.Popen] = []
        self.steps: list[subprocess.Popen] = []
        self.ports: tuple[int, int] | None = None
        self.supervisor: Supervisor | None = None

    # ----------------------------------------------------------------------------- start

    @property
    def processes(self) -> list[subprocess.Popen]:
        started = [self.broker, self.origin, *self.workers_here, *self.steps]
        return [process for process in started if process is not None]

    def __enter__(self) -> ScoopRun:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> ScoopRun:
        self.run_dir = self._make_run_dir()
        try:
            self._start_processes()
        except BaseException:
            self.stop()
            raise
        return self

    def _make_run_dir(self) -> Path:
        try:
            root = rundirs.private_root(self.runtime_root)
        except rundirs.RunDirError as error:
            raise ScoopLaunchError(str(error)) from None
        path = rundirs.create(root, RUN_PREFIX)
        if self.protect:
            # Created with the umask's mode inside the 0700 directory; made owner-only here.
            for name in zmq.auth.create_certificates(path, "run"):
                os.chmod(name, 0o600)
        return path

    def _secure_args(self, role: str, local: bool) -> list[str]:
        args = [self.python, "-m", SECURE_MODULE, role]
        if self.protect:
            args += ["--keys", str(self.run_dir)]
        if local:
            args += ["--parent", str(os.getpid())]
        return args

    def _bootstrap_args(self, origin: bool) -> list[str]:
        task_port, info_port = self.ports
        args = [
            *("--size", str(self.workers), "--workingDirectory", self.cwd),
            *("--brokerHostname", self.address, "--externalBrokerHostname", self.address),
            *("--taskPort", str(task_port), "--metaPort", str(info_port)),
        ]
        if origin:
            args.append("--origin")
        return [*args, "--backend=ZMQ", "-v", *self.program]

    def _start_processes(self) -> None:
        read_fd, write_fd = os.pipe()  # every process's stderr, read by the supervisor
        # The supervisor tells the origin through this pipe that the others are ready.
        ready_read, ready_write = os.pipe() if self.workers > 1 else (None, None)
        common = {"env": self.env, "cwd": self.cwd, "stdin": subprocess.DEVNULL, "stderr": write_fd}
        try:
            self.broker = subprocess.Popen(
                [*self._secure_args("broker", True), "--address", self.address],
                stdout=subprocess.PIPE,
                **({"process_group": 0} if self.own_group else {}),
                **common,
            )
            self.ports = self._read_ports()
            group = {"process_group": self.broker.pid} if self.own_group else {}
            origin_io = common
            if ready_read is not None:
                env = {**self.env, scoop_secure.READY_FD_ENV: str(ready_read)}
                origin_io = {**common, "env": env, "pass_fds": (ready_read,)}
            self.origin = subprocess.Popen(
                [*self._secure_args("worker", True), "--", *self._bootstrap_args(True)],
                **group,
                **origin_io,
            )
            self._start_workers({**common, **group})
        except BaseException:
            os.close(read_fd)
            if ready_write is not None:
                os.close(ready_write)
            raise
        finally:
            os.close(write_fd)
            if ready_read is not None:
                os.close(ready_read)
        self.supervisor = Supervisor(self, read_fd, ready_write, self._on_line)

    def _start_workers(self, options: dict) -> None:
        """This node's other workers as children, the other nodes' as one srun step each. They
        leave when their input ends (srun passes a step's to every task): `end_workers_input`
        closes it at the end of the run."""
        options = {**options, "stdin": subprocess.PIPE}
        worker = [*self._secure_args("worker", True), "--end-with-input", "--"]
        for _ in range(self.placement[0][1] - 1):
            self.workers_here.append(
                subprocess.Popen([*worker, *self._bootstrap_args(False)], **options)
            )
        for host, count in self.placement[1:]:
            self.steps.append(subprocess.Popen(self.srun_command(host, count), **options))

    def srun_command(self, host: str, count: int) -> list[str]:
        """One srun step running `count` workers on `host`, as an argv list (no shell)."""
        watch = f"{self.address}:{self.ports[0]}"
        worker = [*self._secure_args("worker", False), "--watch", watch, "--end-with-input"]
        srun = [
            "srun",
            "--overlap",
            "--nodes=1",
            f"--ntasks={count}",
            f"--cpus-per-task={self.cpus_per_worker}",
            f"--nodelist={host}",
            f"--job-name=scoop-{host}",
        ]
        # srun ends its step on SIGTERM: the launcher's death then ends the remote workers at
        # once; their broker watch is the backstop.
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        return [*prefix, *srun, *worker, "--", *self._bootstrap_args(False)]

    def _read_ports(self) -> tuple[int, int]:
        with selectors.DefaultSelector() as selector:
            selector.register(self.broker.stdout, selectors.EVENT_READ)
            if not selector.select(BROKER_START_SECONDS):
                raise ScoopLaunchError("the SCOOP broker did not report its ports")
        line = self.broker.stdout.readline().decode().strip()
        try:
            task_port, info_port = (int(port) for port in line.split(","))
        except ValueError:
            self.broker.wait()
            raise ScoopLaunchError(
                f"the SCOOP broker did not start (exit code {self.broker.returncode})"
            ) from None
        return task_port, info_port

    # ------------------------------------------------------------------------- watching

    def lines(self) -> Iterator[str]:
        """Every process's stderr, line by line, until all have exited (without `on_line`)."""
        return self.supervisor.lines()

    def end_workers_input(self) -> None:
        for worker in [*self.workers_here, *self.steps]:
            if worker.stdin is not None and not worker.stdin.closed:
                worker.stdin.close()

    def wait(self) -> int:
        """The origin's exit code, once every process of the run has ended and said its last."""
        for process in self.processes:
            process.wait()
        self.supervisor.wait()
        return self.origin.returncode

    @property
    def returncode(self) -> int | None:
        return None if self.origin is None else self.origin.poll()

    # -------------------------------------------------------------------------- stopping

    def signal_all(self, signum: int) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    process.send_signal(signum)
                    if signum == signal.SIGTERM:  # a stopped process acts on it only once continued
                        process.send_signal(signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        """End whatever is left (SIGTERM, then SIGKILL), reap it, stop the supervision and
        remove the run directory."""
        if self.supervisor is not None:
            self.supervisor.release_origin(ready=False)
        self.end_workers_input()
        alive = [process for process in self.processes if process.poll() is None]
        if alive:
            self.signal_all(signal.SIGTERM)
            deadline = time.monotonic() + KILL_SECONDS
            for process in alive:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            self.signal_all(signal.SIGKILL)
        for process in self.processes:
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self.supervisor is not None:
            self.supervisor.close()
            self.supervisor = None
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="evosweep.evolve.scoop_launcher", description=__doc__.splitlines()[0]
    )
    parser.add_argument("-n", "--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--address", default=LOOPBACK, help="the one address to bind")
    parser.add_argument("--hosts", nargs="+", help="this node first, then the job's others")
    parser.add_argument("--slots", nargs="+", type=int, help="the workers each host holds")
    parser.add_argument("--cpus-per-worker", type=int, default=1)
    parser.add_argument("--runtime-root", type=Path, help="where the per-run directory goes")
    parser.add_argument("--no-curve", action="store_true", help="no CURVE (to measure its cost)")
    parser.add_argument(
        "--parent", type=int, help="stop the run (SIGTERM to this launcher) when PARENT dies"
    )
    parser.add_argument("program", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS...]")
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        parser.error("no program to run")
    if args.parent:
        die_with_parent(args.parent, signal.SIGTERM)
    run = ScoopRun(
        program,
        args.workers,
        address=args.address,
        hosts=args.hosts,
        slots=args.slots,
        runtime_root=args.runtime_root,
        protect=not args.no_curve,
        cpus_per_worker=args.cpus_per_worker,
        own_group=False,
        on_line=_to_stderr,
    )
    # Any of these ends the run in order (the origin gets SIGTERM and checkpoints), rather than
    # killing this process and, through their death signal, the origin with it.
    with signals.stop_on_signals(STOP_SIGNALS), run:
        code = run.wait()
    return code if code >= 0 else 128 - code


def _to_stderr(line: str) -> None:
    with contextlib.suppress(OSError):  # a closed stderr must not stop the run's supervision
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
