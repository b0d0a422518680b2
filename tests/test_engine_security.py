"""The engine cluster's network surface and its fate after its owner dies, on real processes.

Every listener of the controller, its schedulers and the engines is on loopback, refuses peers
without the cluster's keys, and is unreachable from another network namespace; a killed owner
(SIGKILL) leaves no process behind, and its cluster directory (keys) is removed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psutil
import pytest
import zmq
from ipyparallel.serialize import pack_apply_message
from joblib import Parallel, delayed
from jupyter_client.session import Session

from evosweep.engines import engine_cluster
from evosweep.runtime.addresses import LOOPBACK
from evosweep.runtime.rundirs import OWNER_FILE
from helpers.attacks import (
    Gate,
    Marker,
    assert_rejected,
    attack,
    listeners,
    network_namespace,
    tree,
    wait_at_gate,
)

# Bounds for waiting on events that should come much sooner; reaching one is a failure.
EVENT_SECONDS = 30
ORPHAN_SECONDS = 60
SUBNETS = ("10.77.98", "10.77.198", "10.78.98")


@contextlib.contextmanager
def _busy(engines, directory: Path, tasks: int = 6):
    """Run the gated workload in a thread while the body runs; check its results after."""
    work = Gate(directory, tasks)
    results = []
    errors = []

    def run():
        try:
            with engines.joblib_backend():
                results.extend(Parallel(batch_size=1)(work.calls()))
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        work.wait_started(engines.n_engines)
        yield work
    finally:
        work.release()
        thread.join(EVENT_SECONDS)
        work.close()
    assert not thread.is_alive(), "the workload did not finish after the gate opened"
    assert not errors, errors
    assert results == [1] * tasks


def _cluster_processes(engines, engine_pids) -> dict[str, list[psutil.Process]]:
    """The controller with its children (schedulers, heart monitor), and every engine with
    its children (nanny), from the recorded pids (busy engines answer no pid request)."""
    return {
        "controller": tree(engines.cluster.controller.process.pid),
        "engines": [p for pid in engine_pids for p in tree(pid)],
    }


def _listeners(processes) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket the processes hold."""
    return {address for found in listeners(processes).values() for address in found}


def _key_material(engines) -> list[str]:
    security = engines.workdir / "profile" / "security"
    found = []
    for path in security.glob("ipcontroller-*.json"):
        info = json.loads(path.read_text())
        found += [info["key"], info["curve_serverkey"]]
    return found


def test_every_listener_is_on_loopback_with_curve_and_no_key_on_a_command_line(tmp_path):
    with engine_cluster(2, slurm=False) as engines:
        pids = engines.engine_pids()
        with _busy(engines, tmp_path):
            processes = _cluster_processes(engines, pids)
            by_kind = {kind: _listeners(group) for kind, group in processes.items()}
        # the controller's registration, scheduler and heartbeat ports; each engine's
        # heartbeat monitor (engines run without ipyparallel's nanny)
        assert len(by_kind["controller"]) >= 14, by_kind
        assert len(by_kind["engines"]) >= engines.n_engines, by_kind  # each engine's heart
        for kind, found in by_kind.items():
            for address, port in found:
                assert ipaddress.ip_address(address).is_loopback, (kind, address, port)
        secrets = _key_material(engines)
        assert all(secrets), "connection files lack the HMAC key or the CURVE server key"
        for group in processes.values():
            for process in group:
                command_line = " ".join(process.cmdline())
                assert not any(secret in command_line for secret in secrets), command_line
        security = engines.workdir / "profile" / "security"
        assert security.stat().st_mode & 0o777 == 0o700


def test_crafted_pickles_on_every_port_execute_nothing(tmp_path):
    marker = tmp_path / "executed"
    with engine_cluster(2, slurm=False) as engines:
        pids = engines.engine_pids()
        with _busy(engines, tmp_path) as work:
            groups = _cluster_processes(engines, pids).values()
            ports = sorted({port for group in groups for _, port in _listeners(group)})
            # peers without the keys: refused at the zmq handshake (CURVE required); raw
            # pickle bytes, not even a zmq greeting: the peer closes the connection
            assert_rejected(attack([(LOOPBACK, port) for port in ports], marker))
            with _forged_then_signed(engines, marker) as wait_for_replies:
                work.release()
                wait_for_replies()
        assert not marker.exists()
        # the cluster still works
        with engines.joblib_backend():
            assert Parallel()(delayed(abs)(-i) for i in range(8)) == list(range(8))
    assert not marker.exists()


@contextlib.contextmanager
def _forged_then_signed(engines, marker: Path):
    """A peer that knows the controller's CURVE key but not the HMAC key sends each (busy)
    engine a pickle that would create the marker; then the owner sends a signed request on
    the same connection. Yields a function that waits for the signed replies: an engine that
    answers the second message has handled, and dropped, the first."""
    security = engines.workdir / "profile" / "security"
    info = json.loads(next(security.glob("ipcontroller-*-client.json")).read_text())
    session_args = dict(
        signature_scheme=info["signature_scheme"], packer=info["pack"], unpacker=info["unpack"]
    )
    forger = Session(key=uuid.uuid4().hex.encode(), **session_args)
    owner = Session(key=info["key"].encode(), **session_args)
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.linger = 0
    dealer.curve_publickey, dealer.curve_secretkey = zmq.curve_keypair()
    dealer.curve_serverkey = info["curve_serverkey"].encode()
    dealer.connect(f"{info['interface']}:{info['mux']}")
    targets = [engines.client._engines[engine_id].encode() for engine_id in engines.client.ids]
    for target in targets:
        forged = pack_apply_message(Marker(marker), (), {})
        forger.send(dealer, "apply_request", content={}, buffers=forged, ident=target)
        signed = pack_apply_message(os.getpid, (), {})
        owner.send(dealer, "apply_request", content={}, buffers=signed, ident=target)

    def wait_for_replies():
        replies = 0
        while replies < len(targets):
            assert dealer.poll(EVENT_SECONDS * 1000), "no reply to the signed requests"
            _, reply = owner.recv(dealer, mode=0)
            if reply["msg_type"] == "apply_reply":
                assert reply["content"]["status"] == "ok", reply["content"]
                replies += 1

    try:
        yield wait_for_replies
    finally:
        dealer.close()


@contextlib.contextmanager
def _network_namespace():
    """A namespace joined to this one by a veth pair on an unused private /24; yields
    (namespace name, this side's address)."""
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    subnet = next((s for s in SUBNETS if f" {s}." not in used), None)
    if subnet is None:
        pytest.skip(f"every candidate subnet {SUBNETS} is in use here")
    with network_namespace("evosweep-sec-", subnet) as name:
        yield name, f"{subnet}.1"


# Run inside the namespace: per port, "refused", or for a port that accepts a connection, how
# a zmq peer without keys fares ("handshake failed" is what a CURVE socket answers).
PROBE = """\
import json, socket, sys

import zmq
from zmq.utils.monitor import recv_monitor_message

address, ports = sys.argv[1], json.loads(sys.argv[2])
HANDSHAKE = {
    zmq.EVENT_HANDSHAKE_SUCCEEDED: "handshake succeeded",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake failed",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "handshake failed",
    zmq.EVENT_DISCONNECTED: "handshake failed",
}


def handshake(port):
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.linger = 0
    monitor = dealer.get_monitor_socket()
    dealer.connect(f"tcp://{address}:{port}")
    try:
        while monitor.poll(30000):
            event = recv_monitor_message(monitor)["event"]
            if event in HANDSHAKE:
                return HANDSHAKE[event]
        return "no handshake event"
    finally:
        dealer.disable_monitor()
        dealer.close()


results = {}
for port in ports:
    try:
        socket.create_connection((address, port), timeout=30).close()
    except ConnectionRefusedError:
        results[port] = "refused"
        continue
    except OSError as error:
        results[port] = repr(error)
        continue
    results[port] = handshake(port) if port != ports[-1] else "connected"
print(json.dumps(results))
"""


def _probe_from(namespace: str, address: str, ports: list[int]) -> dict[int, str]:
    """PROBE the ports of `address` from the namespace; the last port is a plain TCP control."""
    completed = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", PROBE, address, json.dumps(ports)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {int(port): result for port, result in json.loads(completed.stdout).items()}


def test_no_port_is_reachable_from_another_network_namespace(tmp_path):
    with _network_namespace() as (namespace, address):
        with engine_cluster(2, slurm=False) as engines:
            pids = engines.engine_pids()
            with _busy(engines, tmp_path):
                groups = _cluster_processes(engines, pids).values()
                ports = sorted({port for group in groups for _, port in _listeners(group)})
                # the probe reaches this side at all: a listener of our own on `address`
                with socket.create_server((address, 0)) as control:
                    control_port = control.getsockname()[1]
                    results = _probe_from(namespace, address, [*ports, control_port])
    assert results.pop(control_port) == "connected", "the namespace cannot reach this side"
    assert results == dict.fromkeys(ports, "refused")


FAKE_SRUN = """\
import os
import subprocess
import sys

# srun -n N --nodelist=a,b [--options] program...: one local copy of the program per node,
# like a step of one task per node, each told its node's name as slurmd tells a task
arguments = sys.argv[1:]
program = arguments[arguments.index("-n") + 2 :]
while program[0].startswith("--"):
    if program[0].startswith("--nodelist="):
        nodes = program[0].partition("=")[2].split(",")
    program = program[1:]
assert len(nodes) == int(arguments[arguments.index("-n") + 1]), arguments
tasks = [subprocess.Popen(program, env={**os.environ, "SLURMD_NODENAME": node}) for node in nodes]
sys.exit(max(task.wait() for task in tasks))
"""


# ipyparallel's client knows this host's addresses from before the test made the veth one.
@pytest.mark.filterwarnings("ignore:.*Controller appears to be listening on localhost")
def test_slurm_mode_listens_for_engines_on_the_cluster_address_only(tmp_path, monkeypatch):
    """The Slurm code path (srun launcher, cluster address) with a stand-in srun that starts
    the step's tasks on this host, and the veth address as the job's cluster address: only
    the controller's engine-facing ports are on it, CURVE-protected; the rest on loopback."""
    from evosweep import allocation
    from evosweep.runtime import addresses

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(f"#!{sys.executable}\n{FAKE_SRUN}")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    with _network_namespace() as (namespace, address):
        monkeypatch.setattr(addresses, "cluster_address", lambda: address)
        monkeypatch.setattr(allocation, "job_slots", lambda cpus: [("node1", 1), ("node2", 1)])
        with engine_cluster(2, slurm=True) as engines:
            pids = engines.engine_pids()
            with _busy(engines, work_dir):
                processes = _cluster_processes(engines, pids)
                controller = _listeners(processes["controller"])
                on_engines = _listeners(processes["engines"])
                with socket.create_server((address, 0)) as control:
                    control_port = control.getsockname()[1]
                    ports = sorted({port for _, port in controller | on_engines})
                    results = _probe_from(namespace, address, [*ports, control_port])
    assert results.pop(control_port) == "connected", "the namespace cannot reach this side"
    outside = {port for host, port in controller if host == address}
    # registration, control, mux, task, iopub, heartbeat ping and pong, broadcast leaves
    assert len(outside) >= 9, controller
    assert {host for host, _ in controller} == {address, LOOPBACK}, controller
    assert {host for host, _ in on_engines} == {LOOPBACK}, on_engines
    assert results == {port: "handshake failed" if port in outside else "refused" for port in ports}


CHILD = """\
import json
import sys
import threading
from pathlib import Path

from joblib import Parallel

from helpers import attacks
from evosweep.engines import engine_cluster

directory = Path(sys.argv[1])
with engine_cluster(2, slurm=False) as engines:
    pids = engines.engine_pids()
    work = attacks.Gate(directory, 4)  # never released

    def run():
        with engines.joblib_backend():
            Parallel(batch_size=1)(work.calls())

    threading.Thread(target=run, daemon=True).start()
    work.wait_started(engines.n_engines)
    info = {"workdir": str(engines.workdir), "controller": engines.cluster.controller.process.pid,
            "engines": pids}
    print("engines ready", json.dumps(info), flush=True)
    sys.stdin.read()  # until killed
"""


@contextlib.contextmanager
def _owner_with_busy_cluster(tmp_path: Path):
    """A child process that holds engine_cluster with a gated workload running; yields
    (child, its cluster's info, the cluster's processes) once it printed "engines ready"."""
    environment = dict(
        os.environ,
        TMPDIR=str(tmp_path),
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        line = child.stdout.readline()
        assert line.startswith("engines ready "), line
        info = json.loads(line.removeprefix("engines ready "))
        processes = psutil.Process(child.pid).children(recursive=True)
        yield child, info, processes
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def _survivors(processes) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=ORPHAN_SECONDS)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_sigkill_of_the_owner_ends_the_cluster_and_removes_its_directory(tmp_path):
    with _owner_with_busy_cluster(tmp_path) as (child, info, processes):
        workdir = Path(info["workdir"])
        names = {p.pid: " ".join(p.cmdline())[-60:] for p in processes}
        assert info["controller"] in names and set(info["engines"]) <= set(names)
        assert (workdir / OWNER_FILE).exists()
        child.send_signal(signal.SIGKILL)
        child.wait()
        survivors = _survivors(processes)
    assert not survivors, [(p.pid, names[p.pid]) for p in survivors]
    # the controller removed it on its way out
    assert not workdir.exists(), sorted(map(str, workdir.rglob("*")))


def test_a_stale_directory_is_removed_by_the_next_cluster(tmp_path, monkeypatch):
    """Owner, controller and engines all killed at once (nothing could clean up)."""
    with _owner_with_busy_cluster(tmp_path) as (child, info, processes):
        # the cluster first, so its controller cannot clean up after its owner
        everything = [*processes, psutil.Process(child.pid)]
        for process in everything:
            process.send_signal(signal.SIGKILL)
        assert not _survivors(everything)
    stale = Path(info["workdir"])
    assert (stale / "profile" / "security").exists()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with engine_cluster(1, slurm=False) as engines:
        live = engines.workdir
        assert live.parent == stale.parent
        assert not stale.exists()
        # a live cluster's directory is not stale for another one
        with engine_cluster(1, slurm=False):
            assert live.exists()


def test_engines_exit_when_their_controller_is_gone(tmp_path):
    """What engines on other nodes rely on: no heartbeat from the controller, even while a
    task holds the engine's main thread."""
    with engine_cluster(2, slurm=False) as engines:
        pids = engines.engine_pids()
        work = Gate(tmp_path, 2)  # released only after the engines are gone
        try:
            futures = [
                engines.client[engine_id].apply_async(
                    wait_at_gate, str(work.gate), str(work.started)
                )
                for engine_id in engines.client.ids
            ]
            work.wait_started(2)
            processes = _cluster_processes(engines, pids)
            controller = processes["controller"][0]
            controller.send_signal(signal.SIGKILL)
            survivors = _survivors(processes["controller"] + processes["engines"])
            assert not survivors, survivors
        finally:
            work.close()
        del futures


SLURM_CHILD = """\
import json
import os
import socket
import sys
import threading
from pathlib import Path

from joblib import Parallel

sys.path.insert(0, sys.argv[2])
from helpers import attacks
from evosweep.engines import engine_cluster

with engine_cluster(tasks=2) as engines:
    where = engines.client[:].apply_sync(
        lambda: (__import__("socket").gethostname(), __import__("os").getpid())
    )
    work = attacks.Gate(Path(sys.argv[1]), 4)  # never released

    def run():
        with engines.joblib_backend():
            Parallel(batch_size=1)(work.calls())

    threading.Thread(target=run, daemon=True).start()
    work.wait_started(engines.n_engines)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "workdir": str(engines.workdir),
            "controller": engines.cluster.controller.process.pid, "engines": where}
    print("engines ready", json.dumps(info), flush=True)
    sys.stdin.read()  # until killed
"""

# The batch script outlives the killed owner until the test releases it, so what ends the
# cluster is the cluster's own watchdogs, not Slurm cleaning up after a finished job.
SLURM_JOB = """\
#!/bin/bash
{python} child.py {directory}/work {tests} < /dev/null > ready 2> child.err &
read -r _ < release
"""


@pytest.mark.slurm
def test_sigkill_of_the_owner_in_a_slurm_job_ends_the_srun_engines(slurm_cluster, tmp_path):
    from helpers.slurm_cluster import ACCOUNT, PARTITION

    for name in ("ready", "release"):
        os.mkfifo(tmp_path / name)
    (tmp_path / "work").mkdir()
    (tmp_path / "child.py").write_text(SLURM_CHILD)
    job_script = SLURM_JOB.format(
        python=sys.executable, directory=tmp_path, tests=Path(__file__).parent
    )
    (tmp_path / "job.sh").write_text(job_script)
    ready = os.open(tmp_path / "ready", os.O_RDWR)  # never blocks; the job writes the line
    release = os.open(tmp_path / "release", os.O_RDWR)
    submitted = subprocess.run(
        ["sbatch", "--parsable", "-A", ACCOUNT, "-p", PARTITION, "-t", "5", "-N", "2", "-n", "2"]
        + [f"--chdir={tmp_path}", "-o", "job.out", str(tmp_path / "job.sh")],
        capture_output=True,
        text=True,
        check=True,
    )
    job_id = submitted.stdout.strip().split(";")[0]
    try:
        with open(ready, "rb", buffering=0, closefd=False) as lines:
            line = lines.readline().decode()
        assert line.startswith("engines ready "), line
        info = json.loads(line.removeprefix("engines ready "))
        assert len({host for host, _ in info["engines"]} | {info["host"]}) == 2, info
        # the job's nodes share this host's pid namespace (only network and name differ)
        roots = [info["controller"], *(pid for _, pid in info["engines"])]
        processes = [p for pid in roots for p in tree(pid)]
        os.kill(info["pid"], signal.SIGKILL)
        survivors = _survivors(processes)
        assert not survivors, survivors
        left = sorted(map(str, Path(info["workdir"]).rglob("*")))
        assert not Path(info["workdir"]).exists(), left
    finally:
        os.write(release, b"done\n")
        os.close(release)
        os.close(ready)
        subprocess.run(["scancel", job_id], capture_output=True)
