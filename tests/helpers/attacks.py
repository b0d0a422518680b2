"""What the security tests attack a run with, and how they hold a run while they attack it.

- ``listeners``: every listening TCP socket of a run's processes, each read in the process's
  own network namespace (those of the Slurm test cluster's nodes included);
- ``attack`` / ``attack_from``: per port, whether TCP reaches it, a raw pickle on a plain
  connection, and zmq peers (NULL, or CURVE with a key pair of their own) that send crafted
  pickles in every message shape SCOOP or ipyparallel would read; ``attack_from`` runs it in
  another network namespace. Unpickling any of them creates a marker file (``Marker``);
- ``network_namespace``: a namespace joined to this one by a veth pair;
- ``Lines``: lines from a FIFO with every wait bounded; ``Gate``: engine tasks that report they
  started and wait until the test opens the gate;
- SCOOP runs of the evolve entry point (``write_run``, ``comparable``, ``serial_result``) and
  the launcher a Slurm job runs (``SCOOP_SLURM_LAUNCHER``).

Engines get this module's functions by value; processes in other namespaces import it from
tests/.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import pickle
import select
import shutil
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import cloudpickle
import psutil
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

import evosweep.evolve
from helpers.evolve_results import RASTRIGIN

# Engines cannot import tests/ modules: the gate's functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TESTS = Path(__file__).resolve().parents[1]
SRC = Path(evosweep.evolve.__file__).resolve().parents[2]
MAIN = Path(evosweep.evolve.__file__).resolve().parent / "__main__.py"
ENV = dict(os.environ, PYTHONPATH=str(SRC))
LOOPBACK = "127.0.0.1"
# Bound on every wait here; reaching it fails the test (the events come much sooner).
EVENT_SECONDS = 60
HANDSHAKE_END = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


def _in_tests(call: str) -> list[str]:
    """A Python command line that runs `call` from this module (in another namespace)."""
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); from helpers import attacks; attacks.{call}"
    return [sys.executable, "-c", code]


def _enter(netns: str | Path) -> list[str]:
    """Prefix entering a network namespace: a name under /run/netns, or a namespace file."""
    return ["nsenter", f"--net={Path('/run/netns') / netns}"]


# ---------------------------------------------------------------------------- listeners


def tree(pid: int) -> list[psutil.Process]:
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def netns_of(pid: int) -> int:
    """The inode of the process's network namespace (as os.stat of a /run/netns file gives it)."""
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def _listeners_here(pids) -> dict[int, list[tuple[str, int]]]:
    found = {}
    for pid in pids:
        found[pid] = [
            (c.laddr.ip, c.laddr.port)
            for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
    return found


def listeners_main() -> None:
    """Entry point in a process's namespace: its listeners, as JSON on stdout."""
    found = _listeners_here(int(pid) for pid in sys.argv[1:])
    print(json.dumps({pid: [list(address) for address in found[pid]] for pid in found}))


def listeners(processes) -> dict[int, list[tuple[str, int]]]:
    """(address, port) of every listening TCP socket (IPv4 and IPv6) of each process, matched
    by socket inode from /proc/PID/fd (psutil). psutil reads the socket table of the namespace
    it runs in, so a process of another namespace is read from a process started in that one."""
    by_namespace = defaultdict(list)
    for process in processes:
        by_namespace[netns_of(process.pid)].append(process.pid)
    found = {}
    for namespace, pids in by_namespace.items():
        if namespace == netns_of(os.getpid()):
            found.update(_listeners_here(pids))
            continue
        command = _enter(f"/proc/{pids[0]}/ns/net") + _in_tests("listeners_main()")
        listing = subprocess.run(
            command + [str(pid) for pid in pids],
            capture_output=True,
            text=True,
            check=True,
            timeout=EVENT_SECONDS,
        )
        for pid, addresses in json.loads(listing.stdout).items():
            found[int(pid)] = [(ip, port) for ip, port in addresses]
    return found


def bound_host(ip: str) -> str:
    return ip.removeprefix("::ffff:")


def processes_mentioning(text: str) -> list[psutil.Process]:
    """Live processes whose command line mentions `text` (the test cluster's nodes share this
    PID namespace: only their network and host names are their own)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if text in " ".join(process.info["cmdline"] or []) and (
                process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process)
        except psutil.Error:
            pass
    return found


# ----------------------------------------------------------------------------- attacker


class Marker:
    """Unpickling this creates the marker file: proof that a pickle was executed."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def payload_frames(marker: Path) -> list[list[bytes]]:
    """The payload in every message shape whose frames SCOOP's broker or workers unpickle."""
    evil = pickle.dumps(Marker(marker))
    return [
        [b"I", evil],  # broker: INIT
        [b"SU", evil],  # broker: STATUS_UPDATE
        [b"C", evil],  # broker: CONNECT
        [b"T", evil, evil],  # broker relays it; a worker unpickles it
        [b"RP", evil, evil],  # a worker's direct socket: REPLY
    ]


def handshake(
    host: str,
    port: int,
    kind: int,
    server_key: bytes | None,
    messages: list[list[bytes]],
    deadline: float,
) -> str:
    """Connect a zmq socket (NULL security, or CURVE with a key pair of its own and the given
    server key), queue the messages (a DEALER), and return how the handshake ended. After a
    handshake that succeeded, the messages are delivered before this returns."""
    context = zmq.Context()
    sock = context.socket(kind)
    sock.linger = 0
    if server_key:
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
        sock.curve_serverkey = server_key
    if kind == zmq.SUB:
        sock.subscribe(b"")
    monitor = sock.get_monitor_socket()
    outcome = "no handshake event"
    try:
        sock.connect(f"tcp://{host}:{port}")
        if kind == zmq.DEALER:
            for frames in messages:
                try:
                    # Never blocking: a peer that rejects the handshake drops the connection,
                    # and a DEALER without one would wait in send for a peer forever.
                    sock.send_multipart(frames, flags=zmq.NOBLOCK)
                except zmq.Again:  # rejected already: nothing more can be delivered
                    break
        while monitor.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            event = recv_monitor_message(monitor)["event"]
            if event & HANDSHAKE_END:
                outcome = zmq.Event(event).name
                break
        if outcome == "HANDSHAKE_SUCCEEDED":
            sock.linger = max(0, int((deadline - time.monotonic()) * 1000))
        return outcome
    finally:
        sock.disable_monitor()
        monitor.close()
        sock.close()
        context.term()  # waits for the queued messages only after a handshake that succeeded


def send_raw(host: str, port: int, payload: bytes, timeout: float) -> str:
    """Send bytes on a plain TCP connection; how the peer ended it."""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        try:
            connection.sendall(payload)
            while connection.recv(4096):
                pass
        except TimeoutError:
            return "timed out"
        except ConnectionResetError:
            return "reset"
        return "closed"


def attack(
    targets, marker: Path, server_key: bytes | None = None, messages=()
) -> dict[tuple[str, int], dict]:
    """Per (host, port): whether TCP reaches it; for one that it reaches, how the peer ended a
    raw pickle's connection, and how each zmq handshake (DEALER and SUB; NULL and, given a
    server key, CURVE) ended, the DEALERs sending the SCOOP-shaped payloads and `messages`.
    Each port within EVENT_SECONDS."""
    messages = [*payload_frames(marker), *messages]
    raw = pickle.dumps(Marker(marker))
    outcome = {}
    for host, port in targets:
        deadline = time.monotonic() + EVENT_SECONDS
        try:
            socket.create_connection((host, port), timeout=EVENT_SECONDS).close()
        except ConnectionRefusedError:
            outcome[host, port] = {"tcp": "refused"}
            continue
        except OSError as error:
            outcome[host, port] = {"tcp": repr(error)}
            continue
        outcome[host, port] = {
            "tcp": "open",
            "raw": send_raw(host, port, raw, EVENT_SECONDS),
            "handshakes": {
                f"{zmq.SocketType(kind).name} {'CURVE' if key else 'NULL'}": handshake(
                    host, port, kind, key, messages, deadline
                )
                for kind in (zmq.DEALER, zmq.SUB)
                for key in dict.fromkeys((None, server_key))
            },
        }
    return outcome


def attack_main() -> None:
    """Entry point for the attacker inside another network namespace (JSON on stdout)."""
    spec = json.loads(sys.argv[1])
    key = spec["server_key"].encode() if spec["server_key"] else None
    messages = [[base64.b64decode(frame) for frame in frames] for frames in spec["messages"]]
    result = attack(
        [tuple(target) for target in spec["targets"]], Path(spec["marker"]), key, messages
    )
    print(json.dumps([[host, port, value] for (host, port), value in result.items()]))


def attack_from(
    netns: str | Path, targets, marker: Path, server_key: bytes | None = None, messages=()
) -> dict[tuple[str, int], dict]:
    """`attack` run in the network namespace `netns` (a name under /run/netns or a path)."""
    spec = {
        "targets": [list(target) for target in targets],
        "marker": str(marker),
        "server_key": server_key.decode() if server_key else None,
        "messages": [[base64.b64encode(f).decode() for f in frames] for frames in messages],
    }
    output = subprocess.run(
        [*_enter(netns), *_in_tests("attack_main()"), json.dumps(spec)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=(len(spec["targets"]) + 1) * 3 * EVENT_SECONDS,
    )
    assert output.returncode == 0, output.stderr
    return {(host, port): value for host, port, value in json.loads(output.stdout)}


def assert_rejected(outcome: dict, curve_peers_admitted: bool = False) -> None:
    """Every target was reached, ended the raw pickle's connection and refused every NULL
    handshake; CURVE peers with a key of their own were refused by the authenticator, unless
    `curve_peers_admitted` (ipyparallel: each message's HMAC signature is what it checks)."""
    for target, result in outcome.items():
        assert result["tcp"] == "open", (target, result)
        assert result["raw"] in ("closed", "reset"), (target, result)
        ends = result["handshakes"]
        assert "no handshake event" not in ends.values(), (target, result)
        null = [end for name, end in ends.items() if name.endswith("NULL")]
        assert "HANDSHAKE_SUCCEEDED" not in null, (target, result)
        curve = [end for name, end in ends.items() if name.endswith("CURVE")]
        if curve and not curve_peers_admitted:
            assert "HANDSHAKE_SUCCEEDED" not in curve, (target, result)
            assert "HANDSHAKE_FAILED_AUTH" in curve, (target, result)


# -------------------------------------------------------------------- network namespaces


def _remove_leftover_namespaces(prefix: str) -> None:
    """Namespaces (and so their veth pairs) of test processes that died before their teardown."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    alive = {pid % 100000 for pid in psutil.pids() if "pytest" in _cmdline(pid)}
    for name in (line.split()[0] for line in listing.splitlines() if line.strip()):
        tag = name.removeprefix(prefix)
        if name.startswith(prefix) and tag.isdigit() and int(tag) not in alive:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


@contextlib.contextmanager
def network_namespace(prefix: str, subnet: str):
    """A namespace named `prefix` and this process's tag, joined to this one by a veth pair on
    the /24 `subnet` (this side .1, the namespace's .2); yields its name. Removed afterwards
    (the pair goes with it)."""
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace and a veth pair needs root")
    if not shutil.which("ip"):
        pytest.skip("creating a network namespace needs iproute2's `ip`")
    _remove_leftover_namespaces(prefix)
    name = f"{prefix}{os.getpid() % 100000}"
    here, there = (f"ev{subnet.replace('.', '')}{side}" for side in "ab")
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", here, "type", "veth", "peer", "name", there],
        ["ip", "link", "set", there, "netns", name],
        ["ip", "addr", "add", f"{subnet}.1/24", "dev", here],
        ["ip", "link", "set", here, "up"],
        ["ip", "-n", name, "addr", "add", f"{subnet}.2/24", "dev", there],
        ["ip", "-n", name, "link", "set", there, "up"],
        ["ip", "-n", name, "link", "set", "lo", "up"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


# ------------------------------------------------------------------------ FIFOs and gates


class Lines:
    """Lines from a FIFO this process holds open for reading and writing: opening it never
    waits for a writer, a writer's exit does not end it, and every read is bounded."""

    def __init__(self, path: Path, size: int | None = None):
        self.fd = os.open(path, os.O_RDWR)
        if size:
            fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, size)
        self.pending = b""
        self.seen: list[str] = []

    def next(self, timeout: float = EVENT_SECONDS, deadline: float | None = None) -> str:
        deadline = deadline or time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.fd], [], [], left)
            assert ready, "no line in time; the last ones:\n" + "\n".join(self.seen[-30:])
            self.pending += os.read(self.fd, 65536)
        line, self.pending = self.pending.split(b"\n", 1)
        self.seen.append(line.decode(errors="replace"))
        return self.seen[-1]

    def until(self, prefix: str, timeout: float = EVENT_SECONDS, fail: str | None = None) -> str:
        """The next line that starts with `prefix`, within `timeout`; a line that starts with
        `fail` before it fails the test."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next(deadline=deadline)
            if line.startswith(prefix):
                return line
            assert not (fail and line.startswith(fail)), "\n".join(self.seen[-30:])

    def close(self) -> None:
        os.close(self.fd)


def wait_at_gate(gate: str, started: str) -> int:
    """A task that says it started (its PID, a line on `started`), then waits until the test
    opens `gate` (one byte)."""
    import os

    descriptor = os.open(started, os.O_WRONLY)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    os.close(descriptor)
    descriptor = os.open(gate, os.O_RDONLY)
    try:
        return len(os.read(descriptor, 1))
    finally:
        os.close(descriptor)


def gated_calls(directory: Path, tasks: int):
    """`tasks` joblib calls of wait_at_gate at `directory`'s Gate."""
    from joblib import delayed

    gate, started = str(Path(directory) / "gate"), str(Path(directory) / "started")
    return (delayed(wait_at_gate)(gate, started) for _ in range(tasks))


class Gate:
    """The test's end of the FIFOs of `tasks` gated tasks in `directory`: it holds both open,
    so tasks never block on opening them, and if the test dies the gate opens (the tasks read
    the end of the file)."""

    def __init__(self, directory: Path, tasks: int):
        self.directory = Path(directory)
        self.gate, self.started = self.directory / "gate", self.directory / "started"
        os.mkfifo(self.gate)
        os.mkfifo(self.started)
        self.gate_fd = os.open(self.gate, os.O_RDWR)
        self.started_lines = Lines(self.started)
        self.tasks = tasks
        self.released = False

    def calls(self):
        return gated_calls(self.directory, self.tasks)

    def wait_started(self, count: int, timeout: float = EVENT_SECONDS) -> list[int]:
        """Once `count` tasks have started: the PIDs of the processes running them."""
        return [int(self.started_lines.next(timeout)) for _ in range(count)]

    def release(self) -> None:
        if not self.released:
            self.released = True
            os.write(self.gate_fd, b"x" * self.tasks)

    def close(self) -> None:
        self.release()
        os.close(self.gate_fd)
        self.started_lines.close()


# --------------------------------------------------------------------------- SCOOP runs

# 100 generations print about 8 KiB after the first one: more than a held pipe takes.
PROBLEM = RASTRIGIN | {"generations": 100, "checkpoint_every": 1000}


def write_run(directory: Path, workers: int = 2, problem=PROBLEM) -> tuple[list[str], Path]:
    """The origin's program (the evolve entry point, SCOOP map) and where it puts its result."""
    from evosweep.evolve.spec import build_run

    directory.mkdir(parents=True, exist_ok=True)
    run = build_run("cma", problem, 7, workers, directory / "ck.pkl")
    spec, result = directory / "run.json", directory / "result.pkl"
    run.write(spec)
    return [str(MAIN), "--spec", str(spec), "--result", str(result), "--map", "scoop"], result


def comparable(result_path: Path) -> dict:
    """A RunResult minus timings and worker counts."""
    result = dataclasses.asdict(pickle.loads(result_path.read_bytes()))
    for key in ("wall_seconds", "workers", "map", "worker_tasks"):
        result.pop(key)
    result["logbook"] = [{k: v for k, v in e.items() if k != "elapsed"} for e in result["logbook"]]
    return result


def serial_result(directory: Path, problem=PROBLEM) -> dict:
    """`comparable` of the same run without SCOOP."""
    program, result = write_run(directory, problem=problem)
    program[-1] = "serial"
    subprocess.run([sys.executable, *program], env=ENV, check=True, capture_output=True)
    return comparable(result)


# Enough progress lines after the first to fill both pages of a held Slurm run.
SLURM_PROBLEM = PROBLEM | {"generations": 400}

# A Slurm batch script's SCOOP run over the job's nodes, one worker per task, held like a local
# one: the run's stderr pipe is one page, and so is the FIFO its output goes to when the test
# stops reading it. Arguments: the runtime root, then the origin's program.
SCOOP_SLURM_LAUNCHER = """
import fcntl, sys
from pathlib import Path
from evosweep import allocation
from evosweep.runtime import addresses
from evosweep.evolve.scoop_launcher import ScoopRun
hosts = allocation.job_hosts()
address = addresses.cluster_address()
workers = allocation.slurm_tasks()
print("hosts", *hosts, "address", address, flush=True)
with ScoopRun(sys.argv[2:], workers, address=address, hosts=hosts, runtime_root=Path(sys.argv[1])) as run:
    with open(f"/proc/{run.origin.pid}/fd/2", "wb") as stderr:
        fcntl.fcntl(stderr, fcntl.F_SETPIPE_SZ, 4096)
    for line in run.lines():
        print(line, flush=True)
"""
