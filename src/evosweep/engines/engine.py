"""An engine of a cluster: ipyparallel's ipengine, except that a requested shutdown exits 0, and
that it exits when the cluster's owner (same host) or its controller (any node) is gone, and
that it exits without the interpreter's finalisation (see guard.exit_at_once).

    python -m evosweep.engines.engine [ipengine options]

ipyparallel 9.2's IPEngine.start runs `loop.run_sync(...)`; a shutdown_request stops that loop,
so tornado raises "Event loop stopped before Future completed." and every engine exits 1
(silently: its stderr is rerouted to the client). On Slurm the engines' srun step then ends
FAILED (ExitCode 1:0). Any other error, and a SIGTERM, still exit non-zero.

Engines are forked: one engine program (local, or the srun task on each node) imports the
modules named in $EVOSWEEP_ENGINE_PRELOAD (the search's estimator's) and then forks the engines
that share them, so a node's engines start for the CPU of one and read the modules from a shared
file system once. $EVOSWEEP_ENGINE_COPIES says how many: a count, or "node=count,..." for srun
(Slurm's node names). An engine started alone starts that import in a background thread instead,
so it overlaps its connection and registration.
"""

import contextlib
import importlib
import os
import sys
import threading

from ipyparallel.engine import app

from evosweep.engines import guard
from evosweep.engines.programs import COPIES_VARIABLE, PRELOAD_VARIABLE
from evosweep.runtime import lifetime

PRELOAD_THREAD = "evosweep-preload"


class IPEngine(app.IPEngine):
    def load_connection_file(self):
        super().load_connection_file()
        if guard.owner() is not None:
            info = self.connection_info
            guard.watch_controller(f"{info['interface']}:{info['hb_ping']}", self.curve_serverkey)

    def start(self):
        try:
            super().start()
        except RuntimeError:
            if getattr(self.kernel, "_shutdown_message", None) is None:
                raise  # not a requested shutdown


def import_quietly(names: list[str]) -> None:
    for name in names:
        # One that fails is reported by the client's preload, or by the fit that needs it.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def copies_here(copies: str, node: str) -> int:
    """How many engines to fork on `node`: "4" everywhere, "node1=4,node2=2" per node."""
    if "=" not in copies:
        return int(copies or 0)
    per_node = dict(part.split("=") for part in copies.split(","))
    if node not in per_node:
        sys.exit(f"evosweep engine: node {node!r} has no engine count in {COPIES_VARIABLE}")
    return int(per_node[node])


def main() -> None:
    preload = [name for name in os.environ.get(PRELOAD_VARIABLE, "").split(",") if name]
    copies = copies_here(os.environ.get(COPIES_VARIABLE, ""), os.environ.get("SLURMD_NODENAME", ""))
    if copies:
        import_quietly(preload)
        lifetime.run_as_copies(copies)  # returns in each copy
        if "numpy.random" in sys.modules:  # each copy its own global stream, as processes have
            sys.modules["numpy.random"].seed()
    elif preload:
        threading.Thread(
            target=import_quietly, args=(preload,), name=PRELOAD_THREAD, daemon=True
        ).start()
    guard.watch_owner(lambda: guard.leave("the process that owns this cluster is gone"), False)
    IPEngine.launch_instance()
    guard.exit_at_once(0)  # a requested shutdown: nobody waits for its reply (stop_cluster)


if __name__ == "__main__":
    main()
