"""Inside the SCOOP broker and workers that scoop_launcher starts: narrow binds, CURVE on every socket.

SCOOP 0.7.2 binds its broker and each worker's direct socket to ``tcp://*`` and unpickles
whatever arrives, so anyone who can reach a port runs code as the job's owner. The two entry
points here run SCOOP's own broker and bootstrap after a small, contained patch:

- SCOOP creates one zmq context per process (``Broker.context``, ``ZMQCommunicator.ZMQcontext``).
  Subclasses of those two classes turn that attribute into a property that swaps the fresh
  context for a :class:`GuardedContext` before SCOOP makes any socket on it. The workers' class is
  installed as ``scoop._types.Communicator``, the one name SCOOP instantiates it by.
- Every socket of a GuardedContext is a :class:`GuardedSocket`: ``bind`` refuses wildcards (SCOOP's
  ``tcp://*`` becomes the one address the process was given, or for a worker the address it
  announces to its peers) and makes the socket a CURVE server; ``connect`` makes it a CURVE client.
  libzmq snapshots the options per endpoint, so a worker's direct ROUTER socket is a server for
  its bind and a client for each peer it connects to.
- Each GuardedContext runs pyzmq's ZAP authenticator, which accepts only the run's public key:
  a peer must hold the run's secret key (a 0600 file in a 0700 per-run directory, made by
  scoop_launcher) before a single frame of its reaches SCOOP's ``pickle.loads``.

    python -m evosweep.evolve.scoop_secure broker --address ADDR [--keys DIR] [--parent PID]
    python -m evosweep.evolve.scoop_secure worker [--keys DIR] [--parent PID]
        [--watch HOST:PORT] [--end-with-input] -- BOOTSTRAP-ARGUMENTS...

The broker prints its task and info ports on one stdout line. Without ``--keys`` the sockets stay
narrow but unauthenticated (only for measuring what CURVE costs). ``--parent`` makes the process
die with the launcher (the parent-death signal); ``--watch`` makes a worker on another node exit
once the broker's port stops answering; ``--end-with-input`` makes a worker exit when its
standard input ends (the launcher closes it at the end of the run).
"""

from __future__ import annotations

import argparse
import os
import runpy
import select
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from evosweep.runtime.addresses import is_wildcard
from evosweep.runtime.lifetime import die_with_parent
from evosweep.runtime.signals import stop_on_signals

PUBLIC_KEY = "run.key"
SECRET_KEY = "run.key_secret"
# A remote worker checks the broker's port this often; it exits after WATCH_FAILURES misses in
# a row, so within about 30 s of the broker's end (the launcher's death takes the broker along).
WATCH_SECONDS = 5.0
WATCH_FAILURES = 3
WATCHDOG_EXIT = 75
# A worker writes this line once it takes tasks; the launcher then writes b"1" to the pipe whose
# read end the origin finds in READY_FD_ENV (or closes it, when a worker dies first).
READY_LINE = "scoop worker ready"
READY_FD_ENV = "EVOSWEEP_SCOOP_READY_FD"


class WildcardBind(ValueError):
    """A bind to a wildcard address was refused."""


@dataclass(frozen=True)
class Guard:
    """How this process's sockets bind and authenticate.

    host: where a bind to a wildcard goes; None: the host of SCOOP's worker identity
    (``scoop.worker``, the address the worker tells its peers to connect to).
    keys_dir: the run's key directory; None: no CURVE (narrow binds only).
    """

    host: str | None = None
    keys_dir: Path | None = None

    def keys(self) -> tuple[bytes, bytes]:
        public, secret = zmq.auth.load_certificate(self.keys_dir / SECRET_KEY)
        if not secret:
            raise ValueError(f"no secret key in {self.keys_dir / SECRET_KEY}")
        return public, secret

    def bind_host(self) -> str:
        if self.host:
            return self.host
        import scoop

        identity = getattr(scoop, "worker", b"") or b""
        return identity.decode().rpartition(":")[0]

    def endpoint(self, endpoint: str) -> str:
        scheme, _, rest = endpoint.partition("://")
        host, _, port = rest.rpartition(":")
        if is_wildcard(host):
            host = self.bind_host()
        if scheme != "tcp" or is_wildcard(host):
            raise WildcardBind(f"refusing to bind {endpoint!r}: no single address to bind to")
        return f"tcp://{host}:{port}"


class GuardedSocket(zmq.Socket):
    """A zmq socket that binds to one address only and speaks CURVE when the run has keys."""

    def bind(self, addr: str):
        guard = self.context.guard
        addr = guard.endpoint(addr)
        if guard.keys_dir is not None:
            public, secret = self.context.keys
            self.setsockopt(zmq.CURVE_PUBLICKEY, public)
            self.setsockopt(zmq.CURVE_SECRETKEY, secret)
            self.setsockopt(zmq.CURVE_SERVER, 1)
        return super().bind(addr)

    def connect(self, addr: str):
        if self.context.guard.keys_dir is not None:
            public, secret = self.context.keys
            self.setsockopt(zmq.CURVE_PUBLICKEY, public)
            self.setsockopt(zmq.CURVE_SECRETKEY, secret)
            # Setting the server's key makes this endpoint a CURVE client (as_server = 0).
            self.setsockopt(zmq.CURVE_SERVERKEY, public)
        return super().connect(addr)


class GuardedContext(zmq.Context):
    """A zmq context whose sockets are GuardedSockets, with a ZAP authenticator that admits
    only the run's public key (the same key pair serves every process of the run)."""

    _socket_class = GuardedSocket
    guard: Guard | None = None
    keys: tuple[bytes, bytes] | None = None
    authenticator: ThreadAuthenticator | None = None

    @classmethod
    def for_guard(cls, guard: Guard) -> GuardedContext:
        context = cls()
        context.guard = guard
        if guard.keys_dir is not None:
            context.keys = guard.keys()
            context.authenticator = ThreadAuthenticator(context)
            context.authenticator.start()
            context.authenticator.configure_curve(domain="*", location=str(guard.keys_dir))
        return context

    def destroy(self, linger: int | None = None) -> None:
        # SCOOP's sockets close first and the ZAP thread stops after them (its sockets are
        # closed by that thread): no handshake is ever admitted without the authenticator.
        for sock in list(self._sockets):
            if isinstance(sock, GuardedSocket) and not sock.closed:
                if linger is not None:
                    sock.setsockopt(zmq.LINGER, linger)
                sock.close()
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None
        super().destroy(linger)


# The guard of this process, set by the entry point before SCOOP makes its context.
_GUARD: Guard | None = None


def guarded_context(attribute: str) -> property:
    """A property for SCOOP's context attribute that swaps the plain context SCOOP assigns
    (no socket made on it yet) for a GuardedContext."""
    private = f"_guarded_{attribute}"

    def get(self):
        return self.__dict__[private]

    def set(self, context):
        if not isinstance(context, GuardedContext):
            context.term()
            context = GuardedContext.for_guard(_GUARD)
        self.__dict__[private] = context

    return property(get, set)


def guarded_broker_class():
    from scoop.broker.brokerzmq import Broker

    class GuardedBroker(Broker):
        context = guarded_context("context")
        _shut_down = False

        def shutdown(self):
            # Called by the SHUTDOWN message and again on the way out; the second call would
            # retry a send on a destroyed context for a second.
            if not self._shut_down:
                self._shut_down = True
                super().shutdown()

    return GuardedBroker


def guarded_communicator_class():
    from scoop._comm.scoopzmq import ZMQCommunicator

    class GuardedCommunicator(ZMQCommunicator):
        ZMQcontext = guarded_context("ZMQcontext")

        def __init__(self):
            super().__init__()  # ends once the broker has answered this worker's INIT
            import scoop

            if not scoop.IS_ORIGIN:
                # The program was imported before this (it may warm up there): the worker now
                # takes tasks. The launcher counts these lines to tell the origin.
                sys.stderr.write(f"{READY_LINE} on {socket.gethostname()} (pid {os.getpid()})\n")
                sys.stderr.flush()

    return GuardedCommunicator


def wait_for_workers(timeout: float) -> bool | None:
    """In the origin: wait until the launcher says that every other worker is ready (True) or
    that one of the run ended first (False); None when the launcher does not tell (one worker,
    or a caller that reads no stderr). TimeoutError after `timeout` seconds without word."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return None
    fd = int(fd)
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        if not readable:
            raise TimeoutError(f"the SCOOP workers were not all ready after {timeout:g} s")
        return os.read(fd, 1) == b"1"
    finally:
        os.close(fd)


def watch_broker(host: str, port: int) -> threading.Thread:
    """Exit once the broker's port stops accepting connections (a worker on another node has
    no parent on the launcher's node to die with)."""

    def watch():
        failures = 0
        stop = threading.Event()
        while not stop.wait(WATCH_SECONDS):
            try:
                socket.create_connection((host, port), timeout=WATCH_SECONDS).close()
                failures = 0
            except OSError:
                failures += 1
                if failures >= WATCH_FAILURES:
                    sys.stderr.write(f"scoop worker: broker {host}:{port} gone; exiting\n")
                    sys.stderr.flush()
                    os._exit(WATCHDOG_EXIT)

    thread = threading.Thread(target=watch, name="broker-watch", daemon=True)
    thread.start()
    return thread


def leave_at_end_of_input() -> threading.Thread:
    """Exit 0 once standard input ends: the launcher closes a worker's input (a remote step's,
    through srun) when the run is over, so a worker that joined after SCOOP's shutdown message
    leaves at once, and a step ends by itself (COMPLETED) instead of being cancelled."""

    def wait():
        # os.read, not sys.stdin: a daemon thread holding the buffered reader's lock would
        # abort the interpreter's own shutdown.
        while os.read(0, 65536):
            pass
        os._exit(0)

    thread = threading.Thread(target=wait, name="end-of-input", daemon=True)
    thread.start()
    return thread


def _setup(args) -> None:
    global _GUARD
    if args.parent:
        die_with_parent(args.parent)
    keys_dir = Path(args.keys) if args.keys else None
    _GUARD = Guard(host=getattr(args, "address", None), keys_dir=keys_dir)


def broker_main(args) -> int:
    _setup(args)
    broker = guarded_broker_class()(
        f"tcp://{args.address}:*", f"tcp://{args.address}:*", hostname=args.address
    )
    with stop_on_signals():
        try:
            task_port, info_port = broker.getPorts()
            sys.stdout.write(f"{task_port},{info_port}\n")
            sys.stdout.flush()
            broker.run()
        finally:
            broker.shutdown()
    return 0


def worker_main(args) -> int:
    _setup(args)
    if args.watch:
        host, _, port = args.watch.rpartition(":")
        watch_broker(host, int(port))
    if args.end_with_input:
        leave_at_end_of_input()
    import scoop._types

    # The one name SCOOP's FutureQueue instantiates its communicator by.
    scoop._types.Communicator = guarded_communicator_class()
    sys.argv = ["scoop.bootstrap", *args.bootstrap]
    runpy.run_module("scoop.bootstrap.__main__", run_name="__main__", alter_sys=True)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="evosweep.evolve.scoop_secure", description=__doc__)
    roles = main.add_subparsers(dest="role", required=True)
    broker = roles.add_parser("broker")
    broker.add_argument("--address", required=True, help="the one address to bind")
    worker = roles.add_parser("worker")
    worker.add_argument("--watch", help="HOST:PORT of the broker to watch")
    worker.add_argument(
        "--end-with-input", action="store_true", help="exit 0 when standard input ends"
    )
    worker.add_argument("bootstrap", nargs=argparse.REMAINDER, help="scoop.bootstrap arguments")
    for role in (broker, worker):
        role.add_argument("--keys", help="the run's key directory (CURVE); omit: no CURVE")
        role.add_argument("--parent", type=int, help="die with this parent process")
    return main


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.role == "worker" and args.bootstrap[:1] == ["--"]:
        args.bootstrap = args.bootstrap[1:]
    return broker_main(args) if args.role == "broker" else worker_main(args)


if __name__ == "__main__":
    sys.exit(main())
