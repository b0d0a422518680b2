"""Where a cluster's engines run: local processes, or one srun step inside the job's Slurm
allocation (one engine per task)."""

from __future__ import annotations

from ipyparallel.cluster.launcher import EngineLauncher, MPILauncher
from traitlets import List, Unicode
from traitlets.config import Config

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


def engine_placement(config: Config, slurm: bool, cpus: int) -> tuple[dict, str]:
    """The Cluster's launcher options and the engines' bind address, srun or local engines."""
    if not slurm:
        # Local engines start beside the controller, not after it, and read its connection
        # file (in this cluster's private directory) once it appears; srun engines get theirs
        # in their environment, as that directory may not be on their node.
        config.Cluster.send_engines_connection_env = False
        return {}, LOOPBACK
    # One step, one engine per task, each engine bound to its task's cpus; an engine that
    # exits must not take the others down.
    config.SrunEngineSetLauncher.mpi_args = [
        f"--cpus-per-task={cpus}",
        "--kill-on-bad-exit=0",
        "--exact",
    ]
    return {"engine_launcher_class": SrunEngineSetLauncher}, addresses.cluster_address()
