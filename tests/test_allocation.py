"""The job's nodes and the workers each holds, as read from scontrol's lines (faked here; the
Slurm test cluster checks them for real in test_slurm_allocation.py)."""

from __future__ import annotations

import pytest

from evosweep import allocation
from evosweep.runtime import slurm

DETAILED = (
    "JobId=7 JobName=search NumNodes=3 NumCPUs=6 BatchHost=node2 NodeList=node[1-3] "
    "Nodes=node1 CPU_IDs=0 Mem=0 GRES= Nodes=node2 CPU_IDs=0-3 Mem=0 GRES= "
    "Nodes=node3 CPU_IDs=0 Mem=0 GRES="
)
UNDETAILED = "JobId=7 JobName=search NumNodes=2 NumCPUs=8 BatchHost=node2 NodeList=node[1-2]"


def _fake_scontrol(monkeypatch, job_line: str) -> None:
    hostnames = {"node1": "node1", "node2": "node2", "node3": "node3"}
    hostnames |= {"node[1-3]": "node1\nnode2\nnode3", "node[1-2]": "node1\nnode2"}

    def scontrol(*args):
        if args[:2] == ("show", "hostnames"):
            return hostnames[args[2]] + "\n"
        assert args[:3] == ("show", "job", "--details")
        return job_line + "\n"

    monkeypatch.setattr(slurm, "scontrol", scontrol)
    monkeypatch.setenv("SLURM_JOB_ID", "7")


def test_each_node_holds_the_workers_its_cpus_allow_batch_host_first(monkeypatch):
    _fake_scontrol(monkeypatch, DETAILED)
    assert allocation.job_slots() == [("node2", 4), ("node1", 1), ("node3", 1)]
    assert allocation.job_slots(2) == [("node2", 2), ("node1", 1), ("node3", 1)]
    assert allocation.job_hosts() == ["node2", "node1", "node3"]


def test_without_per_node_cpus_the_job_s_cpus_are_shared_evenly(monkeypatch):
    _fake_scontrol(monkeypatch, UNDETAILED)
    assert allocation.job_slots() == [("node2", 4), ("node1", 4)]
    assert allocation.job_slots(4) == [("node2", 1), ("node1", 1)]


@pytest.mark.parametrize(("ids", "count"), [("0", 1), ("0-3", 4), ("0,2-3", 3), ("1,5", 2)])
def test_slurm_id_lists_are_counted(ids, count):
    assert allocation.count_ids(ids) == count


def test_workers_are_spread_as_the_nodes_slots_allow():
    # 32 tasks over 16 nodes of 4 CPUs, as Slurm packed them.
    hosts = [f"node{i}" for i in range(16)]
    slots = [4] * 5 + [2] + [1] * 10
    assert allocation.spread(32, hosts, slots) == list(zip(hosts, slots, strict=True))
    assert allocation.spread(5, ["a", "b", "c"]) == [("a", 2), ("b", 2), ("c", 1)]
    assert allocation.spread(4, ["a", "b", "c"], [4, 1, 1]) == [("a", 2), ("b", 1), ("c", 1)]
    # Past every host's slots the workers go round-robin on (oversubscribed, as configured).
    assert allocation.spread(7, ["a", "b"], [1, 2]) == [("a", 3), ("b", 4)]
