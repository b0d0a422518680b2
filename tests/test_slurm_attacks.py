"""A search and an evolution spread over the nodes of the Slurm test cluster, attacked from the
other nodes while they run.

Every listener of the run's processes is on one address of its own node: the engine- and
worker-facing ones on the node's cluster address, the rest on loopback, never a wildcard. Every
listener is attacked from every node but its own (a loopback one, at its node's address, must
be refused there) and a loopback one also from its own node: keyless zmq peers are refused, a
raw pickle's connection is closed, and crafted pickles in zmq frames (for the search also a
well-formed ipyparallel request signed with the wrong key) execute nothing. The runs then
finish with the right results.

The runs are held without a clock: the search's tasks wait at a gate (a FIFO) that the test
opens; the evolution's output goes to a FIFO the test stops reading after the first generation,
so its origin blocks on a later progress line (its zmq I/O thread keeps answering) until the
test reads again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest
import zmq.auth
from ipyparallel.serialize import pack_apply_message
from jupyter_client.session import Session

from helpers.attacks import (
    LOOPBACK,
    SCOOP_SLURM_LAUNCHER,
    SLURM_PROBLEM,
    Gate,
    Lines,
    Marker,
    assert_rejected,
    attack_from,
    bound_host,
    comparable,
    listeners,
    netns_of,
    processes_mentioning,
    serial_result,
    tree,
    write_run,
)
from helpers.slurm_cluster import ACCOUNT, NODES, PARTITION, node_address, node_netns
from helpers.waiting import wait_until

pytestmark = pytest.mark.slurm

# Bound on waiting for a job to start and its run to get going (other jobs may hold the nodes).
JOB_SECONDS = 300
PIPE_PAGE = 4096
SEARCH_TASKS = 4
SCOOP_WORKERS = 3

# The owner of a search over the job's tasks (one engine each): it reports the cluster, runs
# gated tasks, then a plain batch once the gate is open, and reports the results.
SEARCH = """\
import json
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[2])
from helpers import attacks
from joblib import Parallel, delayed

from evosweep.engines import engine_cluster

directory, tasks = Path(sys.argv[1]), int(sys.argv[3])
with engine_cluster() as engines:
    info = {"controller": engines.cluster.controller.process.pid, "engines": engines.n_engines,
            "workdir": str(engines.workdir)}
    print("engines ready", json.dumps(info), flush=True)
    with engines.joblib_backend():
        gated = Parallel(batch_size=1)(attacks.gated_calls(directory, tasks))
        after = Parallel()(delayed(abs)(-i) for i in range(8))
print("search done", json.dumps({"gated": gated, "after": after}), flush=True)
"""
# Both jobs write their run's output, then its exit code, to the FIFO `events`.
SEARCH_JOB = """\
#!/bin/bash
"{python}" search.py "{directory}" "{tests}" {tasks} > events 2>&1
echo "job exit $?" > events
"""
EVOLVE_JOB = """\
#!/bin/bash
"{python}" launcher.py "{runtime}" {program} > events 2>&1
echo "job exit $?" > events
"""


@contextlib.contextmanager
def batch_job(directory: Path, script: str, nodes: int, tasks: int):
    """`script` as a batch job of `tasks` tasks over `nodes` nodes, run in `directory`;
    cancelled on the way out (by then it has normally ended)."""
    (directory / "job.sh").write_text(script)
    submitted = subprocess.run(
        [
            *("sbatch", "--parsable", "-A", ACCOUNT, "-p", PARTITION, "-t", "10"),
            *("-N", str(nodes), "-n", str(tasks), f"--chdir={directory}", "-o", "job.out"),
            str(directory / "job.sh"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    job = submitted.stdout.strip().split(";")[0]
    try:
        yield job
    finally:
        subprocess.run(["scancel", job], capture_output=True, timeout=60)


def node_of(pid: int) -> str:
    """The test cluster's node whose network namespace the process is in."""
    nodes = {os.stat(node_netns(node)).st_ino: node for node in NODES}
    return nodes.get(netns_of(pid), "the login node")


def alive(process: psutil.Process) -> bool:
    return process.is_running() and process.status() != psutil.STATUS_ZOMBIE


def is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(bound_host(ip)).is_loopback


def surface(processes) -> list[tuple[str, str, int, int]]:
    """(node, address, port, pid) of every listener of the processes."""
    found = listeners(processes)
    return [(node_of(pid), bound_host(ip), port, pid) for pid in found for ip, port in found[pid]]


def attack_from_other_nodes(listening, marker: Path, server_key=None, messages=()) -> dict:
    """Attack every listener from every node but its own: a loopback one at its node's address
    (where no other node may reach it), the others where they are bound. A loopback one is
    attacked from its own node too, as another user there would. Returns, per (attacking node,
    listening node, address, port), the outcome of `attacks.attack`."""
    bound = {(address, port) for _, address, port, _ in listening}
    outcome = {}
    for attacker in NODES:
        targets = {}
        for node, address, port, _ in listening:
            if node == attacker:
                if is_loopback(address):
                    targets[address, port] = (node, address, port)
            elif not is_loopback(address):
                targets[address, port] = (node, address, port)
            elif (node_address(node), port) not in bound:
                targets[node_address(node), port] = (node, address, port)
        if targets:
            found = attack_from(node_netns(attacker), targets, marker, server_key, messages)
            for target, result in found.items():
                outcome[(attacker, *targets[target])] = result
    return outcome


def assert_nothing_gets_through(outcome: dict, curve_peers_admitted: bool = False) -> None:
    """Another node finds a loopback listener refused; every other attack is rejected."""
    for (attacker, node, address, port), result in outcome.items():
        if attacker != node and is_loopback(address):
            assert result == {"tcp": "refused"}, (attacker, node, address, port, result)
        else:
            assert_rejected({(attacker, node, address, port): result}, curve_peers_admitted)


# ------------------------------------------------------------------------------- search


def engine_facing_ports(workdir: Path) -> tuple[str, bytes, set[int]]:
    """The engines' connection file: the controller's interface, its CURVE public key, and
    every port engines connect to."""
    security = workdir / "profile" / "security"
    info = json.loads(next(security.glob("ipcontroller-*-engine.json")).read_text())
    ports = set()
    for value in info.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int) and not isinstance(item, bool):
                ports.add(item)
    return info["interface"], info["curve_serverkey"].encode(), ports


def forged_request(marker: Path) -> list[bytes]:
    """An ipyparallel apply_request whose function would create the marker, signed with a key
    that is not the cluster's."""
    forger = Session(key=uuid.uuid4().hex.encode())
    frames = forger.serialize(forger.msg("apply_request", content={}))
    return [*frames, *(bytes(buffer) for buffer in pack_apply_message(Marker(marker), (), {}))]


def test_a_search_over_two_nodes_executes_no_pickle_sent_from_another_node(slurm_cluster, tmp_path):
    marker = tmp_path / "executed"
    (tmp_path / "search.py").write_text(SEARCH)
    os.mkfifo(tmp_path / "events")
    events = Lines(tmp_path / "events")
    gate = Gate(tmp_path, SEARCH_TASKS)
    script = SEARCH_JOB.format(
        python=sys.executable, directory=tmp_path, tests=Path(__file__).parent, tasks=SEARCH_TASKS
    )
    try:
        with batch_job(tmp_path, script, nodes=2, tasks=2):
            ready = events.until("engines ready ", JOB_SECONDS, fail="job exit")
            info = json.loads(ready.removeprefix("engines ready "))
            # every engine is in a gated task: the search is under way
            engines = set(gate.wait_started(info["engines"]))
            assert len(engines) == info["engines"] == 2, engines
            controller = tree(info["controller"])
            owner = controller[0].parent()
            batch = node_of(info["controller"])
            assert len({batch, *map(node_of, engines)}) == 2, "no engine on another node"

            interface, server_key, engine_ports = engine_facing_ports(Path(info["workdir"]))
            assert interface == f"tcp://{node_address(batch)}"
            processes = [owner, *controller, *(p for pid in engines for p in tree(pid))]
            listening = surface(processes)
            in_controller = {p.pid for p in controller}
            for node, address, port, pid in listening:
                # the controller's engine-facing sockets on its node's cluster address; the
                # client's, the controller's own and each engine's heart monitor on loopback
                wanted = {LOOPBACK, node_address(batch)} if pid in in_controller else {LOOPBACK}
                assert address in wanted, (node, address, port, pid)
            exposed = {port for _, address, port, _ in listening if address != LOOPBACK}
            assert exposed == engine_ports, (exposed, engine_ports)

            outcome = attack_from_other_nodes(
                listening, marker, server_key, [forged_request(marker)]
            )
            assert {key[-1] for key in outcome} == {port for _, _, port, _ in listening}
            # no client authentication in ipyparallel: a peer with the public key completes
            # the handshake, and every message it sends fails the HMAC check
            assert_nothing_gets_through(outcome, curve_peers_admitted=True)
            assert all(map(alive, processes)), "an attack ended a process"

            gate.release()
            done = events.until("search done ", fail="job exit")
            assert events.until("job exit ") == "job exit 0"
    finally:
        gate.close()
        events.close()
    assert json.loads(done.removeprefix("search done ")) == {
        "gated": [1] * SEARCH_TASKS,
        "after": list(range(8)),
    }
    assert not marker.exists()


# ---------------------------------------------------------------------------- evolution


def scoop_processes(runtime: Path, workers: int, timeout: float):
    """The broker, the workers (origin included) and the launcher of the run keyed in
    `runtime`, once the broker has its two sockets and every worker its direct socket
    (polled: a socket's appearance is no event one can wait on)."""

    def run_processes() -> list:
        return [
            p
            for p in processes_mentioning(str(runtime))
            if p.cmdline()[:1] == [sys.executable]  # not srun, nor setpriv before it
        ]

    def listening() -> list | None:
        run = run_processes()
        brokers = [p for p in run if "broker" in p.cmdline()]
        ready = [p for p in run if "worker" in p.cmdline()]
        if len(brokers) == 1 and len(ready) == workers:
            found = listeners(run)
            if len(found[brokers[0].pid]) == 2 and all(found[p.pid] for p in ready):
                return run
        return None

    run = wait_until(listening, timeout, 0.1)
    assert run, [p.cmdline() for p in run_processes()]
    return run


def test_an_evolution_over_two_nodes_executes_no_pickle_sent_from_another_node(
    slurm_cluster, tmp_path
):
    marker = tmp_path / "executed"
    expected = serial_result(tmp_path / "serial", SLURM_PROBLEM)
    program, result = write_run(tmp_path / "run", SCOOP_WORKERS, SLURM_PROBLEM)
    runtime = tmp_path / "runtime"
    (tmp_path / "launcher.py").write_text(SCOOP_SLURM_LAUNCHER)
    os.mkfifo(tmp_path / "events")
    events = Lines(tmp_path / "events", size=PIPE_PAGE)
    script = EVOLVE_JOB.format(
        python=sys.executable,
        runtime=runtime,
        program=" ".join(f'"{part}"' for part in program),
    )
    try:
        with batch_job(tmp_path, script, nodes=2, tasks=SCOOP_WORKERS):
            hosts = events.until("hosts ", JOB_SECONDS, fail="job exit").split()
            batch, address = hosts[1], hosts[-1]
            assert address == node_address(batch) and len(hosts) == 5, hosts
            events.until("generation ", JOB_SECONDS, fail="job exit")
            # no more reading until the attacks are over: the run is held

            run = scoop_processes(runtime, SCOOP_WORKERS, JOB_SECONDS)
            listening = surface(run)
            for node, bound, port, pid in listening:  # one address each: its node's own
                assert bound == node_address(node), (node, bound, port, pid)
            assert {node for node, _, _, _ in listening} == set(hosts[1:3])
            brokers = {p.pid for p in run if "broker" in p.cmdline()}
            assert {node for node, _, _, pid in listening if pid in brokers} == {batch}

            (keys,) = runtime.glob("run-*")
            public, _ = zmq.auth.load_certificate(keys / "run.key")
            outcome = attack_from_other_nodes(listening, marker, public)
            assert {key[-1] for key in outcome} == {port for _, _, port, _ in listening}
            assert_nothing_gets_through(outcome)
            assert all(map(alive, run)), "an attack ended a process"

            assert events.until("job exit ", JOB_SECONDS) == "job exit 0", events.seen[-30:]
    finally:
        events.close()
    assert not marker.exists()
    assert comparable(result) == expected
