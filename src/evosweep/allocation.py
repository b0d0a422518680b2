"""Where a job runs: a laptop or a Slurm allocation, how many workers, which address to bind.

Search (ipyparallel engines) and evolution (SCOOP workers) both ask this one module, so the
two stages never disagree about the job they are in.

Snakemake's slurm-jobstep plugin strips SLURM_NTASKS and SLURM_NODELIST from a rule's
environment, so the rule passes its `tasks` resource and the node list is read from scontrol.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import subprocess

LOOPBACK = "127.0.0.1"


def in_slurm_job() -> bool:
    return bool(os.environ.get("SLURM_JOB_ID"))


def slurm_tasks(tasks: int | None = None) -> int:
    """The job's task count: `tasks` when the caller knows it, else SLURM_NTASKS."""
    return int(tasks) if tasks else int(os.environ.get("SLURM_NTASKS", "1"))


def spans_tasks(tasks: int | None = None) -> bool:
    """True inside a Slurm job with more than one task: workers then start through srun."""
    return in_slurm_job() and slurm_tasks(tasks) > 1


def worker_count(configured: int | None, threads: int, tasks: int | None = None) -> int:
    """The configured count, else the job's tasks when they span several, else the threads."""
    if configured:
        return int(configured)
    if spans_tasks(tasks):
        return slurm_tasks(tasks)
    return max(1, int(threads))


def cpus_per_worker(cpus_per_task: int | None = None) -> int:
    if cpus_per_task:
        return int(cpus_per_task)
    if in_slurm_job():
        return int(os.environ.get("SLURM_CPUS_PER_TASK", "1"))
    return 1


def _scontrol(*args: str) -> str:
    return subprocess.run(
        ["scontrol", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def _fields(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split() if "=" in item)


def node_name() -> str:
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def job_hosts() -> list[str]:
    """The allocation's nodes, batch host first (the origin and the controller run there)."""
    job = _fields(_scontrol("show", "job", "-o", os.environ["SLURM_JOB_ID"]))
    hosts = _scontrol("show", "hostnames", job["NodeList"]).split()
    batch = job.get("BatchHost")
    return sorted(hosts, key=lambda host: host != batch)


def _routable(address: str) -> bool:
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _address_of(host: str) -> str | None:
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return None
    return address if _routable(address) else None


def _address_towards(host: str, port: int) -> str | None:
    """The local address of the interface that routes to `host` (a UDP connect sends nothing)."""
    peer = _address_of(host)
    if peer is None:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((peer, port))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return address if _routable(address) else None


@functools.cache
def cluster_address() -> str:
    """This node's address on the cluster network: the NodeAddr Slurm has for it, else the
    interface that reaches slurmctld. Never a wildcard; never loopback, which on a stock Debian
    host is what the node's own name resolves to (127.0.1.1) and other nodes cannot reach."""
    node = _fields(_scontrol("show", "node", "-o", node_name()))
    for candidate in (node.get("NodeAddr"), node.get("NodeHostName"), node_name()):
        if candidate and (address := _address_of(candidate)):
            return address
    config = _fields(_scontrol("show", "config").replace(" = ", "="))
    controller = config.get("SlurmctldHost[0]", "")
    host = controller.partition("(")[2].rstrip(")") or controller
    if host and (address := _address_towards(host, int(config.get("SlurmctldPort", 6817)))):
        return address
    raise OSError(
        f"slurm error: no cluster address for node {node_name()!r}: Slurm's NodeAddr, the "
        f"node name and the route to slurmctld all give loopback or nothing"
    )


def bind_address(spans: bool) -> str:
    """Loopback when every worker runs on this host; the cluster address when they do not."""
    return cluster_address() if spans else LOOPBACK
