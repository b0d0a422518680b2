"""The addresses listeners bind: loopback when every peer runs on this host, the node's cluster
address when peers run on other nodes of a Slurm job; never a wildcard."""

from __future__ import annotations

import functools
import ipaddress
import socket

from evosweep.runtime import slurm

LOOPBACK = "127.0.0.1"


def is_wildcard(host: str) -> bool:
    """`*`, empty, 0.0.0.0 or :: (brackets allowed): every interface, never bound."""
    host = host.strip("[]")
    if host in ("", "*"):
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


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
    name = slurm.node_name()
    node = slurm.fields(slurm.scontrol("show", "node", "-o", name))
    for candidate in (node.get("NodeAddr"), node.get("NodeHostName"), name):
        if candidate and (address := _address_of(candidate)):
            return address
    config = slurm.fields(slurm.scontrol("show", "config").replace(" = ", "="))
    controller = config.get("SlurmctldHost[0]", "")
    host = controller.partition("(")[2].rstrip(")") or controller
    if host and (address := _address_towards(host, int(config.get("SlurmctldPort", 6817)))):
        return address
    raise OSError(
        f"slurm error: no cluster address for node {name!r}: Slurm's NodeAddr, the "
        f"node name and the route to slurmctld all give loopback or nothing"
    )


def bind_address(spans_nodes: bool) -> str:
    """Loopback when every worker runs on this host; the cluster address when they do not."""
    return cluster_address() if spans_nodes else LOOPBACK
