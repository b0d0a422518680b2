"""Where a cluster's engines run: local processes forked by one engine program, or one srun step
inside the job's Slurm allocation (one engine per task)."""

from __future__ import annotations

from pathlib import Path

from ipyparallel.cluster.launcher import EngineLauncher, LocalEngineLauncher, MPILauncher
from traitlets import List, Unicode
from traitlets.config import Config

from evosweep.engines.programs import COPIES_VARIABLE
from evosweep.runtime import addresses
from evosweep.runtime.addresses import LOOPBACK


class SrunEngineSetLauncher(MPILauncher, EngineLauncher):
    """`srun -n N [srun args] ipengine ...` inside the current allocation: one engine per task.

    Unlike MPIEngineSetLauncher it does not pass `--mpi` to ipengine (no mpi4py needed).
    """

    mpi_cmd = List(["srun"], config=True)
    name = Unicode("ipengine-srun")

    @property
    def program(self):
        return self.engine_cmd

    @property
    def program_args(self):
        return self.cluster_args + self.engine_args

    def start(self, n):
        self.n = n
        return super().start(n)


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


def engine_placement(config: Config, slurm: bool, cpus: int, security_dir: Path):
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
    # One step, one engine per task, each engine bound to its task's cpus; an engine that
    # exits must not take the others down.
    config.SrunEngineSetLauncher.mpi_args = [
        f"--cpus-per-task={cpus}",
        "--kill-on-bad-exit=0",
        "--exact",
    ]
    return {"engine_launcher_class": SrunEngineSetLauncher}, addresses.cluster_address(), None
