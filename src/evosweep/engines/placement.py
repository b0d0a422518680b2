"""Where a cluster's engines run: local processes forked by one engine program, or one srun
step inside the job's Slurm allocation whose task on each node forks that node's engines."""

from __future__ import annotations

from pathlib import Path

from ipyparallel.cluster.launcher import EngineLauncher, LocalEngineLauncher, MPILauncher
from traitlets import Dict, List, Unicode
from traitlets.config import Config

from evosweep import allocation
from evosweep.engines.programs import COPIES_VARIABLE
from evosweep.runtime import addresses
from evosweep.runtime.addresses import LOOPBACK

# Depending on its version, srun takes one of these from the job's environment as the step's
# --cpus-per-task, which would bind each node's task, and so all its engines, to that many CPUs.
TASK_CPU_VARIABLES = ("SLURM_CPUS_PER_TASK", "SRUN_CPUS_PER_TASK", "SLURM_TRES_PER_TASK")


class SrunEngineSetLauncher(MPILauncher, EngineLauncher):
    """`srun -n <nodes> --ntasks-per-node=1 [srun args] engine ...` inside the current
    allocation: the task on each node imports once and forks `engines_per_node[node]` engines,
    which share the CPUs the job holds there.

    Unlike MPIEngineSetLauncher it does not pass `--mpi` to the engines (no mpi4py needed).
    """

    mpi_cmd = List(["env", *(f"--unset={name}" for name in TASK_CPU_VARIABLES), "srun"])
    engines_per_node = Dict(config=True)
    name = Unicode("ipengine-srun")

    @property
    def program(self):
        return self.engine_cmd

    @property
    def program_args(self):
        return self.cluster_args + self.engine_args

    def start(self, n):
        counts = self.engines_per_node
        if sum(counts.values()) != n:
            raise ValueError(f"{n} engines asked for, {counts} placed")
        self.environment = {
            **self.environment,
            COPIES_VARIABLE: ",".join(f"{node}={count}" for node, count in counts.items()),
        }
        return super().start(len(counts))


class ForkedEngineSetLauncher(LocalEngineLauncher):
    """One local engine program that forks N engines once it has imported what they need
    (evosweep.engines.engine): they share its imports, so N engines start for the CPU of one."""

    name = Unicode("ipengine-forked")

    def start(self, n):
        self.n = n
        self.environment = {**self.environment, COPIES_VARIABLE: str(n)}
        return super().start()


# The connection file local engines wait for (see engine_placement).
ENGINE_FILE = "engines-may-connect.json"


def engine_placement(config: Config, slurm: bool, n_engines: int, cpus: int, security_dir: Path):
    """The Cluster's launcher options, the engines' bind address, and the connection file the
    client must publish (under `security_dir`) once it is connected: None for srun engines.

    Local engines start with the controller, import and fork meanwhile, and then wait for that
    file, a link to the controller's: the client counts engines from the hub's notifications,
    so one that registered before the client had subscribed to them would never be counted.
    srun engines start once the client is connected and get the controller's file in their
    environment, as this cluster's private directory may not be on their node."""
    if not slurm:
        config.Cluster.send_engines_connection_env = False
        engine_file = security_dir / ENGINE_FILE
        config.EngineLauncher.engine_args.append(f"--IPEngine.url_file={engine_file}")
        return {"engine_launcher_class": ForkedEngineSetLauncher}, LOOPBACK, engine_file
    # Each node gets as many engines as the job's CPUs there hold (Slurm may pack unevenly).
    # Without --exact the step's task on a node gets all the job's CPUs there; an engine that
    # exits must not take the others down.
    hosts, slots = zip(*allocation.job_slots(cpus), strict=True)
    placed = dict(allocation.spread(n_engines, hosts, slots))
    config.SrunEngineSetLauncher.engines_per_node = placed
    config.SrunEngineSetLauncher.mpi_args = [
        f"--nodes={len(placed)}",
        f"--nodelist={','.join(placed)}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=0",
    ]
    return {"engine_launcher_class": SrunEngineSetLauncher}, addresses.cluster_address(), None
