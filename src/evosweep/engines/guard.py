"""What makes the controller and the engines exit once they are no longer wanted: the process
that owns the cluster is gone (same host: its pidfd), or the controller is unreachable (any node:
zmq's heartbeat on a connection to the controller)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable

from evosweep.engines.programs import OWNER_VARIABLE
from evosweep.runtime import lifetime

# Seconds an engine stays without a connection to its controller (zmq heartbeats every second
# check it) before it counts the controller as gone and exits: twice the controller's own
# verdict on an engine (HEARTBEAT_MISSES beats). Watched in a thread of its own, so a task that
# holds the engine's main thread cannot delay it.
CONTROLLER_LOST_SECONDS = 10


def leave(reason: str) -> None:
    """Exit at once (from any thread), saying why on the process's real stderr."""
    sys.__stderr__.write(f"evosweep: {reason}; exiting\n")
    exit_at_once(1)


def exit_at_once(code: int) -> None:
    """Flush the logs and output, then exit without the interpreter's finalisation: a daemon
    thread waking from a blocking zmq call into a finalising interpreter can abort the process
    (SIGABRT), which fails the engines' srun step after a clean run."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def owner() -> dict | None:
    """The owner record the cluster passed, or None (an unprotected cluster)."""
    text = os.environ.get(OWNER_VARIABLE)
    return json.loads(text) if text else None


def watch_owner(on_gone: Callable[[], None], strict: bool) -> None:
    """Call `on_gone` when the cluster's owner ends (see evosweep.runtime.lifetime)."""
    record = owner()
    if record is not None:
        lifetime.watch_owner(record, on_gone, strict)


def watch_controller(url: str, serverkey: bytes | None) -> None:
    """Leave once the controller's ping socket at `url` has been unreachable for
    CONTROLLER_LOST_SECONDS. A connection that subscribes to nothing: zmq's own heartbeat (in its
    I/O thread) keeps it checked, and this thread wakes only when it drops, never per ping, so it
    costs a busy engine no GIL hand-offs."""

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
        leave(f"the controller has been unreachable for {CONTROLLER_LOST_SECONDS} s")

    threading.Thread(target=wait, name="evosweep-controller", daemon=True).start()
