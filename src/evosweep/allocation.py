"""Where a job runs: a laptop or a Slurm allocation, how many workers on which nodes.

Search (ipyparallel engines) and evolution (SCOOP workers) both ask this one module, so the
two stages never disagree about the job they are in; the address they bind is
evosweep.runtime.addresses'. Snakemake's slurm-jobstep plugin strips SLURM_NTASKS and
SLURM_NODELIST from a rule's environment, so the rule passes its `tasks` resource and the node
list is read from scontrol.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from evosweep.runtime import slurm


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


def job_hosts() -> list[str]:
    """The allocation's nodes, batch host first (the origin and the controller run there)."""
    return [host for host, _ in job_slots()]


def job_slots(cpus_per_worker: int = 1) -> list[tuple[str, int]]:
    """The allocation's nodes, batch host first, each with the workers its CPUs hold: Slurm
    may give a job its CPUs unevenly (32 tasks over 16 nodes of 4 CPUs: 4,4,4,4,4,2,1,...)."""
    line = slurm.scontrol("show", "job", "--details", "-o", os.environ["SLURM_JOB_ID"])
    job = slurm.fields(line)
    cpus = [
        (host, count_ids(cpu_ids))
        for nodes, cpu_ids in re.findall(r"\bNodes=(\S+) CPU_IDs=(\S+)", line)
        for host in slurm.scontrol("show", "hostnames", nodes).split()
    ]
    if not cpus:
        # A Slurm that does not detail each node's CPUs: the job's CPUs shared evenly.
        hosts = slurm.scontrol("show", "hostnames", job["NodeList"]).split()
        cpus = [(host, int(job["NumCPUs"]) // len(hosts)) for host in hosts]
    slots = [(host, max(1, count // max(1, cpus_per_worker))) for host, count in cpus]
    return sorted(slots, key=lambda slot: slot[0] != job.get("BatchHost"))


def spread(
    workers: int, hosts: Sequence[str], slots: Sequence[int] | None = None
) -> list[tuple[str, int]]:
    """`workers` spread round-robin over `hosts` (the first one gets the origin), at most
    `slots[i]` on host i while any host has room; past every host's slots, round-robin on."""
    room = list(slots) if slots else [workers] * len(hosts)
    counts = [0] * len(hosts)
    placed = 0
    while placed < workers:
        open_hosts = [i for i, count in enumerate(counts) if count < room[i]]
        for i in (open_hosts or range(len(hosts)))[: workers - placed]:
            counts[i] += 1
            placed += 1
    return [(host, count) for host, count in zip(hosts, counts, strict=True) if count]


def count_ids(ranges: str) -> int:
    """How many ids a Slurm id list holds: "0-3" 4, "0,2-3" 3."""
    count = 0
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count
