"""How a cluster's controller and engines are started: `python -m` of evosweep's own programs
(evosweep.engines.controller, evosweep.engines.engine), from the same virtual environment as the
job (on Slurm the engines' srun step runs it on the other nodes), and what they are told."""

import sys

# The owner record (evosweep.runtime.rundirs.owner_record) of the process that owns the cluster,
# as JSON: the controller and the engines exit when it is gone.
OWNER_VARIABLE = "EVOSWEEP_CLUSTER_OWNER"
# The cluster's work directory, which the controller removes when the owner is gone.
CLUSTER_DIR_VARIABLE = "EVOSWEEP_CLUSTER_DIR"
WORKDIR_PREFIX = "evosweep-ipp-"
# Modules an engine starts importing in the background as it starts (comma-separated).
PRELOAD_VARIABLE = "EVOSWEEP_ENGINE_PRELOAD"
# Set for local engines: how many engines one engine program forks once it has imported them.
COPIES_VARIABLE = "EVOSWEEP_ENGINE_COPIES"

ENGINE_CMD = [sys.executable, "-m", "evosweep.engines.engine"]
CONTROLLER_CMD = [sys.executable, "-m", "evosweep.engines.controller"]
