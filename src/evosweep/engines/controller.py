"""The controller of a cluster: ipyparallel's ipcontroller with a per-cluster HMAC key set in
the process, children that die with it, and an exit (removing the cluster's directory) when the
process that owns the cluster is gone.

    python -m evosweep.engines.controller [ipcontroller options]

The key is set here, never on a command line: ipyparallel drops the signature when CURVE is on
unless a key is configured, and the key is what authenticates every message before it is
unpickled. Its connection files appear whole (written aside, then renamed): local engines
start beside the controller and read theirs as soon as it exists.
"""

import json
import multiprocessing
import os
import secrets
import shutil
import tempfile

from ipyparallel.controller.app import IPController
from traitlets.config import Config

from evosweep.engines import guard
from evosweep.engines.programs import CLUSTER_DIR_VARIABLE
from evosweep.runtime import lifetime
from evosweep.runtime.rundirs import OWNER_FILE


def owner_gone() -> None:
    for child in multiprocessing.active_children():
        child.kill()
    directory = os.environ.get(CLUSTER_DIR_VARIABLE)
    if directory and os.path.exists(os.path.join(directory, OWNER_FILE)):
        # The hub's thread may write its engine-state file (an engine leaving) while the
        # tree is removed; once profile/log is gone it cannot, so a second pass finishes.
        for _ in range(3):
            shutil.rmtree(directory, ignore_errors=True)
            if not os.path.exists(directory):
                break
    guard.leave("the process that owns this cluster is gone")


class Controller(IPController):
    def save_connection_dict(self, fname, cdict):
        directory = self.profile_dir.security_dir
        with tempfile.NamedTemporaryFile("w", dir=directory, delete=False) as part:
            json.dump(cdict, part, indent=2)  # mode 0600 from its creation
        os.replace(part.name, os.path.join(directory, fname))


def main() -> None:
    # The schedulers and the heart monitor are forked children: SIGKILLed when this one dies.
    lifetime.children_die_with_this_process()
    guard.watch_owner(owner_gone, strict=True)
    config = Config()
    config.Session.key = secrets.token_hex(32).encode("ascii")
    Controller.launch_instance(config=config)


if __name__ == "__main__":
    main()
