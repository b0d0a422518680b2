"""What a job's nodes hold, read from Slurm: 7 tasks over the 3 nodes of 4 CPUs can only be packed
unevenly (4, 2, 1 on idle nodes, other shapes while other tests' jobs hold CPUs), and the workers
go where the CPUs are (an srun step asking a node for more tasks than the job has CPUs there
fails: "Requested node configuration is not available")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evosweep.engines import ENGINE_CMD
from helpers.slurm_cluster import ACCOUNT, PARTITION, hostnames

pytestmark = pytest.mark.slurm

PROGRAM = (
    "import json, os; from evosweep import allocation; print(json.dumps({"
    "'slots': allocation.job_slots(), 'two_cpus': allocation.job_slots(2),"
    "'cpus': os.environ['SLURM_JOB_CPUS_PER_NODE'], 'nodes': os.environ['SLURM_JOB_NODELIST'],"
    "'batch': os.environ['SLURMD_NODENAME']}))"
)


def expand(counts: str) -> list[int]:
    """Slurm's "4,1(x2)" as [4, 1, 1]."""
    values = []
    for part in counts.split(","):
        value, _, repeat = part.partition("(x")
        values += [int(value)] * int(repeat.rstrip(")") or 1)
    return values


def run_in_uneven_job(directory: Path, program: str) -> tuple[dict, dict[str, int]]:
    """`program` in a job of 7 tasks over the 3 nodes; what it printed (JSON, with the job's
    'cpus' and 'nodes'), and the CPUs Slurm gave each node."""
    (directory / "program.py").write_text(program)
    out = directory / "out.json"
    command = ["sbatch", "--wait", "-A", ACCOUNT, "-p", PARTITION, "-N3", "-n7", "-t", "5"]
    command += ["-o", str(out), "--wrap", f"{sys.executable} {directory / 'program.py'}"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    seen = json.loads(out.read_text())
    return seen, dict(zip(hostnames(seen["nodes"]), expand(seen["cpus"]), strict=True))


def test_job_slots_follow_the_cpus_slurm_gave_each_node(slurm_cluster, tmp_path):
    seen, given = run_in_uneven_job(tmp_path, PROGRAM)
    assert len(set(given.values())) > 1, given  # the uneven packing this test is about
    slots = [tuple(slot) for slot in seen["slots"]]
    assert slots[0][0] == seen["batch"], slots
    assert dict(slots) == given, (slots, given)
    assert dict(tuple(slot) for slot in seen["two_cpus"]) == {
        host: max(1, cpus // 2) for host, cpus in given.items()
    }


ENGINES = (
    "import json, os; from evosweep.engines import engine_cluster\n"
    "def where():\n"
    "    import os, psutil\n"
    "    parent = psutil.Process().parent()\n"
    "    return os.environ['SLURMD_NODENAME'], parent.pid, parent.cmdline()\n"
    "with engine_cluster(tasks=7) as engines:\n"
    "    where = engines.client[:].apply_sync(where)\n"
    "print(json.dumps({'engines': where, 'cpus': os.environ['SLURM_JOB_CPUS_PER_NODE'],"
    " 'nodes': os.environ['SLURM_JOB_NODELIST']}))"
)


def test_each_node_forks_as_many_engines_as_its_cpus_hold(slurm_cluster, tmp_path):
    seen, given = run_in_uneven_job(tmp_path, ENGINES)
    parents = {}
    for node, parent, command in seen["engines"]:
        parents.setdefault(node, set()).add((parent, tuple(command)))
    counts = {node: [engine[0] for engine in seen["engines"]].count(node) for node in parents}
    assert counts == given, (counts, given)
    # One engine program per node, the srun task, forked them all.
    assert all(len(forked) == 1 for forked in parents.values()), parents
    programs = {command[: len(ENGINE_CMD)] for forked in parents.values() for _, command in forked}
    assert programs == {tuple(ENGINE_CMD)}, parents
