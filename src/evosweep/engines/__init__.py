"""One private ipyparallel cluster per job, stopped on every exit path.

    with engine_cluster(n_engines) as engines:
        with engines.joblib_backend():
            GridSearchCV(..., n_jobs=-1).fit(X, y)

`starting_engine_cluster` starts the same cluster in a background thread and yields at once, so
a search job reads its data and builds its search while its engines start; the engines start
importing the modules it names (the estimator's) as they start, and the cluster is ready once
they have them.

Locally every socket of the cluster listens on 127.0.0.1, and one engine program, started with
the controller, imports the engines' modules and forks the `n` engines, which share those
imports and connect once the client has. Inside a Slurm allocation with more than one task, only
the controller's engine-facing sockets listen on the job's cluster address (the client's, the
controller's internal ones and the engines' own stay on loopback), and the engines start as one
`srun` step of one task per node, which imports the modules once and forks as many engines as
the job's CPUs on that node hold (ipyparallel's own Slurm launchers would submit new batch jobs,
and its MPI launcher needs mpi4py). Each cluster has its own profile directory and cluster id
under a fresh temporary directory, so concurrent jobs never share state.

Every connection uses CurveZMQ (encrypted; only a peer holding the controller's public key,
which is kept in the 0600 connection files, completes a handshake), and every message carries
the cluster's HMAC signature, which ipyparallel checks before it unpickles anything. The
controller, its schedulers and the engines exit on their own when the process holding
engine_cluster dies, by any signal, SIGKILL included (the programs `controller` and `engine`,
watched by `guard`); a directory left by a killed owner is removed by the next engine_cluster
on the same host.
"""

import importlib

from evosweep.engines.programs import ENGINE_CMD

# The client side, imported on first use: the controller and engine programs run as modules of
# this package, and an engine that imported it would load numpy and joblib before it registers.
_CLIENT = {
    "EngineCluster": "cluster",
    "EngineStartError": "cluster",
    "StartingCluster": "cluster",
    "engine_cluster": "cluster",
    "starting_engine_cluster": "cluster",
    "joblib_jobs": "backend",
}


def __getattr__(name: str):
    if name in _CLIENT:
        return getattr(importlib.import_module(f"evosweep.engines.{_CLIENT[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENGINE_CMD", *_CLIENT]
