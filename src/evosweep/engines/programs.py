"""The programs of a cluster's controller and engines, passed as `python -c` so that engines
need nothing but ipyparallel (no evosweep import), each preceded by GUARD: what makes them exit
when the process that owns the cluster is gone.
"""

import sys

from evosweep.runtime.rundirs import OWNER_FILE

# The engine program: ipyparallel's ipengine, except that a requested shutdown exits 0.
# ipyparallel 9.2's IPEngine.start runs `loop.run_sync(...)`; a shutdown_request stops that
# loop, so tornado raises "Event loop stopped before Future completed." and every engine
# exits 1 (silently: its stderr is rerouted to the client). On Slurm the engines' srun step
# then ends FAILED (ExitCode 1:0). Any other error, and a SIGTERM, still exit non-zero.
# Passed as `python -c` so the engines need nothing but ipyparallel (no evosweep import).
# GUARD (below) comes first: an engine exits when the process that owns the cluster is gone
# (same host) or when its controller is unreachable (any node).
ENGINE_MAIN = """\
from ipyparallel.engine import app

watch_owner(lambda: leave("the process that owns this cluster is gone"), strict=False)


class IPEngine(app.IPEngine):
    def load_connection_file(self):
        super().load_connection_file()
        if os.environ.get(OWNER_VARIABLE):
            info = self.connection_info
            watch_controller(f"{info['interface']}:{info['hb_ping']}", self.curve_serverkey)

    def start(self):
        try:
            super().start()
        except RuntimeError:
            if getattr(self.kernel, "_shutdown_message", None) is None:
                raise  # not a requested shutdown


IPEngine.launch_instance()
"""

# Seconds an engine stays without a connection to its controller (zmq heartbeats every second
# check it) before it counts the controller as gone and exits: twice the controller's own
# verdict on an engine (HEARTBEAT_MISSES beats). Watched in a thread of its own, so a task that
# holds the engine's main thread cannot delay it.
CONTROLLER_LOST_SECONDS = 10
OWNER_VARIABLE = "EVOSWEEP_CLUSTER_OWNER"
CLUSTER_DIR_VARIABLE = "EVOSWEEP_CLUSTER_DIR"
WORKDIR_PREFIX = "evosweep-ipp-"

# Source that starts the controller's and the engines' programs: reading the owner's record
# (evosweep.rundirs.owner_record: host, boot, pid, start time, as these programs import no
# evosweep), a thread that calls back when the owner exits (a pidfd: no polling), and one that
# exits when the controller is unreachable.
GUARD = f"""\
import json
import os
import select
import socket
import sys
import threading
import time

OWNER_VARIABLE = {OWNER_VARIABLE!r}
CONTROLLER_LOST_SECONDS = {CONTROLLER_LOST_SECONDS}


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            return file.read().strip()
    except OSError:
        return ""


def start_ticks(pid):
    try:
        with open(f"/proc/{{pid}}/stat") as file:
            return int(file.read().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def on_this_host(owner):
    return owner.get("host") == socket.gethostname() and owner.get("boot") == boot_id()


def is_running(owner):
    return start_ticks(owner["pid"]) == owner["start"]


def leave(reason):
    sys.__stderr__.write(f"evosweep: {{reason}}; exiting\\n")
    sys.__stderr__.flush()
    os._exit(1)


def watch_owner(on_gone, strict):
    # strict: the owner must be visible (a process on its host); else (an engine, maybe on
    # another node or in another pid namespace) an invisible owner leaves it to the heartbeat.
    text = os.environ.get(OWNER_VARIABLE)
    if not text:
        return
    owner = json.loads(text)
    if not on_this_host(owner):
        return
    try:
        pidfd = os.pidfd_open(owner["pid"])
    except ProcessLookupError:
        pidfd = None
    except (AttributeError, OSError):  # no pidfd before Linux 5.3: poll instead
        pidfd = -1
    if pidfd is None or not is_running(owner):
        if strict:
            on_gone()
        return

    def wait():
        if pidfd >= 0:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)  # readable once the process has exited
            poller.poll()
        else:
            while is_running(owner):
                time.sleep(1)
        on_gone()

    threading.Thread(target=wait, name="evosweep-owner", daemon=True).start()


def watch_controller(url, serverkey):
    # A connection to the controller's ping socket that subscribes to nothing: zmq's own
    # heartbeat (in its I/O thread) keeps it checked, and this thread wakes only when it
    # drops, never per ping, so it costs a busy engine no GIL hand-offs.
    def wait():
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        link = zmq.Context().socket(zmq.SUB)
        link.linger = 0
        link.heartbeat_ivl = 1000
        link.heartbeat_timeout = CONTROLLER_LOST_SECONDS * 1000
        link.reconnect_ivl = 1000
        if serverkey:
            link.curve_publickey, link.curve_secretkey = zmq.curve_keypair()
            link.curve_serverkey = serverkey
        events = link.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        link.connect(url)
        connected = False
        while events.poll(None if connected else CONTROLLER_LOST_SECONDS * 1000):
            connected = recv_monitor_message(events)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
        leave(f"the controller has been unreachable for {{CONTROLLER_LOST_SECONDS}} s")

    threading.Thread(target=wait, name="evosweep-controller", daemon=True).start()

"""

# The controller program: ipyparallel's ipcontroller with a per-cluster HMAC key set in the
# process (never on a command line: ipyparallel drops the signature when CURVE is on unless a
# key is configured, and the key is what authenticates every message before it is unpickled),
# children that die with it, and an exit (removing the cluster's directory) when the owner is.
CONTROLLER_MAIN = f"""\
import ctypes
import multiprocessing
import secrets
import shutil
import signal

from ipyparallel.controller.app import IPController
from traitlets.config import Config

PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None, use_errno=True)
forking = [os.getpid()]


def remember_parent():
    forking[0] = os.getpid()


def die_with_parent():
    # schedulers and the heart monitor are forked children: SIGKILL them when we die
    libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL))
    if os.getppid() != forking[0]:
        os._exit(1)


def owner_gone():
    for child in multiprocessing.active_children():
        child.kill()
    directory = os.environ.get({CLUSTER_DIR_VARIABLE!r})
    if directory and os.path.exists(os.path.join(directory, {OWNER_FILE!r})):
        # The hub's thread may write its engine-state file (an engine leaving) while the
        # tree is removed; once profile/log is gone it cannot, so a second pass finishes.
        for _ in range(3):
            shutil.rmtree(directory, ignore_errors=True)
            if not os.path.exists(directory):
                break
    leave("the process that owns this cluster is gone")


os.register_at_fork(before=remember_parent, after_in_child=die_with_parent)
watch_owner(owner_gone, strict=True)
config = Config()
config.Session.key = secrets.token_hex(32).encode("ascii")
IPController.launch_instance(config=config)
"""
ENGINE_CMD = [sys.executable, "-c", GUARD + ENGINE_MAIN]
CONTROLLER_CMD = [sys.executable, "-c", GUARD + CONTROLLER_MAIN]
