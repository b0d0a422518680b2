"""Processes that die with the process they serve, however it ends, SIGKILL included.

- `die_with_parent`: the kernel's parent-death signal (prctl PR_SET_PDEATHSIG), for a child
  started by the process it serves; `children_die_with_this_process` sets it in every child
  this process forks (ipyparallel's controller forks its schedulers).
- `run_as_copies`: a process that has imported what it needs forks copies of itself that share
  those imports, stays their parent and passes its stop signals on to them.
- `when_any_ends`: a thread waits on pidfds (no polling) and calls back once one of the watched
  processes has exited; `watch_owner` does it for an owner record (evosweep.runtime.rundirs),
  so a process started elsewhere (an engine under srun) follows the process that owns it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable

from evosweep.runtime import rundirs
from evosweep.runtime.signals import STOP_SIGNALS, stop_on_signals

PR_SET_PDEATHSIG = 1
# How often an owner is checked where the kernel has no pidfd (before Linux 5.3).
OWNER_POLL_SECONDS = 1.0


def die_with_parent(parent: int | None = None, signum: int = signal.SIGKILL) -> None:
    """Get `signum` when the parent (the thread of it that started this process) ends. With
    `parent`, the pid the parent had: one already gone before the prctl sends `signum` now."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(int(signum)), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signum)


def children_die_with_this_process(signum: int = signal.SIGKILL) -> None:
    """Every child this process forks from now on gets `signum` when this process ends."""
    forking = [os.getpid()]

    def remember():
        forking[0] = os.getpid()

    os.register_at_fork(before=remember, after_in_child=lambda: die_with_parent(forking[0], signum))


def run_as_copies(copies: int) -> None:
    """Fork `copies` children and return in each of them. This process stays their parent: it
    passes a stop signal on to them, waits for them all, then exits with the status of the
    first to fail (0 if none did). They die with it (SIGKILL), so none outlives a killed parent.

    What this process imported before the call is shared by the copies (copy-on-write), so
    they start for the CPU of one."""
    parent = os.getpid()
    children = set()
    # A stop signal that arrives while the copies start waits (blocked) until the parent's
    # handler is in place to pass it on; each copy unblocks it at once.
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    with warnings.catch_warnings():
        # Python 3.12+ warns of any fork in a process with threads; the libraries that start
        # one at import (pyarrow's jemalloc) make their own state safe across a fork.
        warnings.simplefilter("ignore", DeprecationWarning)
        for _ in range(copies):
            try:
                child = os.fork()
            except BaseException:
                signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
                raise
            if child == 0:
                signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
                die_with_parent(parent)
                return
            children.add(child)

    def pass_on(signum):
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    failed = 0
    with stop_on_signals(on_signal=pass_on):
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
        while children:
            child, status = os.wait()  # in the order they end
            children.discard(child)
            code = os.waitstatus_to_exitcode(status)
            failed = failed or (128 - code if code < 0 else code)  # signal N: 128 + N
    os._exit(failed)


def when_any_ends(pids: Iterable[int], on_end: Callable[[int], None], name: str) -> bool:
    """Call `on_end(pid)` in a daemon thread once one of `pids` has exited. False (and nothing
    started) when one has already gone: the caller acts at once."""
    watched = {}  # pidfd -> pid
    try:
        for pid in pids:
            watched[os.pidfd_open(pid)] = pid
    except ProcessLookupError:
        for pidfd in watched:
            os.close(pidfd)
        return False
    _in_thread(name, lambda: on_end(watched[_first_exit(watched)]))
    return True


def watch_owner(record: dict, on_gone: Callable[[], None], strict: bool) -> None:
    """Call `on_gone()` (in a thread) when the owner named by `record` ends.

    strict: the owner must be visible (a process on this host), else it counts as gone at once;
    not strict (an engine, maybe on another node or in another pid namespace): an owner that
    cannot be seen is left to other watches."""
    if not rundirs.on_this_host(record):
        return
    try:
        pidfd = os.pidfd_open(record["pid"])
    except ProcessLookupError:
        pidfd = None
    except OSError:  # no pidfd before Linux 5.3: poll the owner's start time instead
        pidfd = -1
    # Checked after the pidfd pins the process: the PID may be another process's by now.
    if pidfd is None or not rundirs.is_running(record):
        if pidfd is not None and pidfd >= 0:
            os.close(pidfd)
        if strict:
            on_gone()
        return

    def wait():
        if pidfd >= 0:
            _first_exit([pidfd])
        else:
            while rundirs.is_running(record):
                time.sleep(OWNER_POLL_SECONDS)
        on_gone()

    _in_thread("evosweep-owner", wait)


def _first_exit(pidfds: Iterable[int]) -> int:
    """Wait until one of `pidfds` is readable (its process has exited); return it."""
    poller = select.poll()
    for pidfd in pidfds:
        poller.register(pidfd, select.POLLIN)
    (pidfd, _), *_ = poller.poll()
    return pidfd


def _in_thread(name: str, target: Callable[[], None]) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()
