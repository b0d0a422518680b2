"""The multi-node test cluster itself: nodes, names, addresses and traffic between nodes.

Each node runs slurmd in its own network and UTS namespace; a job step sees only that
node's address, its name resolves to it, and steps on two nodes talk over the bridge.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.slurm_cluster import (
    ACCOUNT,
    NODES,
    PARTITION,
    START_SCRIPT,
    STOP_SCRIPT,
    USABLE_STATES,
    node_address,
    node_pids,
    node_states,
    on_node,
    sacct,
    slurmd_pid,
    wait_for_sacct,
)

pytestmark = pytest.mark.slurm

SLURM_ARGS = ["-A", ACCOUNT, "-p", PARTITION, "-t", "2"]

SERVER = """
import socket
host = socket.gethostname()
address = socket.gethostbyname(host)
with socket.create_server((address, 0)) as server:
    print("listening", address, server.getsockname()[1], flush=True)
    conn, peer = server.accept()
    with conn:
        message = conn.makefile().readline().strip()
        conn.sendall(f"{host}\\n".encode())
print(f"{host} got {message} from {peer[0]}", flush=True)
"""

CLIENT = """
import socket, sys
host = socket.gethostname()
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30) as conn:
    conn.sendall(f"{host}\\n".encode())
    reply = conn.makefile().readline().strip()
print(f"{host} got {reply}", flush=True)
"""

# The batch step (on the first node) starts the server step there, waits for its
# "listening ADDRESS PORT" line, then runs the client step on the second node against it.
DRIVER = """
import subprocess, sys
python, first, second = sys.argv[1:4]
step = ["srun", "--nodes=1", "--ntasks=1"]
server = subprocess.Popen(
    [*step, f"--nodelist={first}", "--job-name=server", python, "-u", "server.py"],
    stdout=subprocess.PIPE, text=True,
)
listening = server.stdout.readline().split()
print("server:", *listening, flush=True)
client = subprocess.run(
    [*step, f"--nodelist={second}", "--job-name=client", python, "client.py", first, listening[2]],
    stdout=subprocess.PIPE, text=True, timeout=60,
)
print("client:", client.stdout.strip(), flush=True)
print("server:", server.communicate(timeout=60)[0].strip(), flush=True)
sys.exit(server.returncode or client.returncode)
"""


def srun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["srun", *SLURM_ARGS, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_every_node_takes_jobs(slurm_cluster):
    # Other tests' jobs may be running or waiting, so "mixed", "allocated" and "planned" count
    # too; "idle*" (not responding), "down" or "drained" do not.
    states = node_states()
    assert len(NODES) >= 3 and slurm_cluster == NODES
    assert all(states.get(node) in USABLE_STATES for node in NODES), states


def test_one_task_per_node_reports_its_hostname(slurm_cluster):
    n = str(len(NODES))
    proc = srun("-N", n, "-n", n, "hostname")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == sorted(NODES)


def test_node_name_resolves_to_its_bridge_address(slurm_cluster):
    n = str(len(NODES))
    code = "import socket; h = socket.gethostname(); print(h, socket.gethostbyname(h))"
    proc = srun("-N", n, "-n", n, sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    seen = dict(line.split() for line in proc.stdout.splitlines())
    assert seen == {node: node_address(node) for node in NODES}
    assert not any(address.startswith("127.") for address in seen.values())


def test_node_namespace_has_only_its_own_address_and_no_way_out(slurm_cluster):
    node = NODES[1]
    addresses = on_node(node, ["ip", "-4", "-o", "addr", "show"])
    assert addresses.returncode == 0, addresses.stderr
    assert sorted(line.split()[3] for line in addresses.stdout.splitlines()) == sorted(
        ["127.0.0.1/8", f"{node_address(node)}/24"]
    )
    routes = on_node(node, ["ip", "-4", "route", "show"])
    assert routes.returncode == 0 and "default" not in routes.stdout, routes.stdout
    assert slurmd_pid(node) in node_pids(node)


def test_steps_on_two_nodes_talk_over_tcp(slurm_cluster, tmp_path):
    first, second = NODES[:2]
    for name, code in {"server.py": SERVER, "client.py": CLIENT, "driver.py": DRIVER}.items():
        (tmp_path / name).write_text(textwrap.dedent(code))
    job = subprocess.run(
        ["sbatch", "--parsable", "--wait", *SLURM_ARGS, "-N", "2", "-n", "2"]
        + [f"--nodelist={first},{second}", f"--chdir={tmp_path}", "-o", "job.out"]
        + ["--wrap", f"{sys.executable} -u driver.py {sys.executable} {first} {second}"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = (tmp_path / "job.out").read_text() if (tmp_path / "job.out").exists() else ""
    assert job.returncode == 0, f"{job.stderr}\n{output}"
    job_id = job.stdout.strip().split(";")[0]
    lines = output.splitlines()
    assert f"server: listening {node_address(first)}" in lines[0], output
    assert f"client: {second} got {first}" in lines, output
    assert f"server: {first} got {second} from {node_address(second)}" in lines, output

    def steps_done(rows):
        by_name = {r["JobName"]: r for r in rows}
        return all(
            by_name.get(name, {}).get("State") == "COMPLETED"
            for name in ("batch", "server", "client")
        )

    fields = ["JobID", "JobName", "State", "NodeList"]
    rows = wait_for_sacct(steps_done, jobids=job_id, fields=fields)
    by_name = {r["JobName"]: r for r in rows}
    assert steps_done(rows), rows
    assert by_name["batch"]["NodeList"] == first
    assert by_name["server"]["NodeList"] == first
    assert by_name["client"]["NodeList"] == second
    assert sacct(job_id, fields=["State"], allocations=True) == [{"State": "COMPLETED"}]


def _our_traces(prefix: str, tag: str) -> dict[str, list[str]]:
    """What a cluster with node-name ``prefix`` and hosts ``tag`` leaves on the machine."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    hosts = open("/etc/hosts").read().splitlines()
    return {
        "netns": [line.split()[0] for line in netns.splitlines() if f"-{prefix}" in line],
        "links": [line.split(": ")[1] for line in links.splitlines() if f"-{prefix}" in line],
        "hosts": [line for line in hosts if line.endswith(tag)],
    }


def test_a_second_cluster_runs_beside_the_first_and_stops_clean(slurm_cluster):
    """start-cluster.sh with another state, SLURM_CONF, bridge, /24, ports, cluster and node
    names starts a cluster of the node count it is given while the default one runs;
    stop-cluster.sh (given only the state) removes all of it and nothing of the other."""
    # Under /var/lib, not tmp_path: munged (user munge) must reach it. Kept, as the default
    # cluster's state is, so a later run starts quickly.
    state = Path("/var/lib/evosweep-slurm-second")
    settings = {
        "EVOSWEEP_SLURM_STATE": str(state),
        "EVOSWEEP_SLURM_NET": "10.77.15",
        "EVOSWEEP_SLURM_BRIDGE": "evsw5",
        "EVOSWEEP_SLURM_NODE_PREFIX": "tnode",
        "EVOSWEEP_SLURM_CLUSTER": "evotest",
        "EVOSWEEP_SLURM_PORT": "6847",
        "SLURM_CONF": str(state / "etc" / "slurm.conf"),
    }
    env = {**os.environ, **settings}
    first_hosts = _our_traces("node", "# evosweep-slurm")["hosts"]

    def run(command, environment):
        return subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=600, check=False
        )

    try:
        started = run(["bash", str(START_SCRIPT), "4"], env)
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        hosts = run(["srun", *SLURM_ARGS, "-N4", "-n4", "hostname"], env)
        assert sorted(hosts.stdout.split()) == [f"tnode{i}" for i in range(1, 5)], hosts.stderr
        traces = _our_traces("tnode", "# evotest-slurm")
        assert len(traces["netns"]) == len(traces["links"]) == len(traces["hosts"]) == 4, traces
    finally:
        stopped = run(
            ["bash", str(STOP_SCRIPT)], {**os.environ, "EVOSWEEP_SLURM_STATE": str(state)}
        )
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert _our_traces("tnode", "# evotest-slurm") == {"netns": [], "links": [], "hosts": []}
    assert not any((state / "pids").glob("*.pid")), (
        "stop-cluster.sh left daemons recorded in its state"
    )
    assert (
        "evsw5" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    )
    # The default cluster is untouched.
    assert _our_traces("node", "# evosweep-slurm")["hosts"] == first_hosts
    states = node_states()
    assert all(states.get(node) in USABLE_STATES for node in NODES), states
