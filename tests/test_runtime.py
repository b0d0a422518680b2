"""evosweep.runtime on real signals and processes: one exception for every stop signal, children
that die with their parent or owner, owner records that tell a reused PID apart, narrow binds,
and the engine programs' guard reading the owner the cluster passed."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading

import pytest

from evosweep.engines import ENGINE_CMD, guard
from evosweep.engines.programs import OWNER_VARIABLE
from evosweep.runtime import addresses, lifetime, rundirs
from evosweep.runtime.signals import STOP_SIGNALS, Interrupted, signal_name, stop_on_signals

# Bounds on waits for events that should come much sooner; reaching one fails the test.
EVENT_SECONDS = 60


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_each_stop_signal_raises_interrupted_once_and_the_handlers_come_back(signum):
    before = {other: signal.getsignal(other) for other in STOP_SIGNALS}
    with pytest.raises(Interrupted) as raised:
        with stop_on_signals():
            os.kill(os.getpid(), signum)
            signal.pause()  # the handler raises before this returns
    assert raised.value.signum == signum and raised.value.code == 128 + signum
    assert signal_name(raised.value.code) == signal.Signals(signum).name
    assert {other: signal.getsignal(other) for other in STOP_SIGNALS} == before


def test_later_signals_are_ignored_while_the_run_stops():
    with pytest.raises(Interrupted):
        with stop_on_signals():
            try:
                os.kill(os.getpid(), signal.SIGUSR1)
                signal.pause()
            finally:
                assert all(signal.getsignal(s) == signal.SIG_IGN for s in STOP_SIGNALS)
                os.kill(os.getpid(), signal.SIGTERM)  # ignored: the clean-up goes on


def test_a_callback_decides_instead_of_the_exception():
    heard = []
    with stop_on_signals(on_signal=heard.append):
        os.kill(os.getpid(), signal.SIGUSR1)
        while not heard:
            signal.pause()
    assert heard == [signal.SIGUSR1]


def test_outside_the_main_thread_nothing_is_installed():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def in_thread():
        with stop_on_signals():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [before] and signal.getsignal(signal.SIGTERM) == before
    assert signal_name(None) == "exit status None"


PARENT = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())])
print(child.pid, flush=True)
child.wait()
"""
CHILD = """
import signal, sys
from evosweep.runtime.lifetime import die_with_parent
die_with_parent(int(sys.argv[1]), signal.SIGTERM)
print("armed", flush=True)
sys.stdin.read()
"""


def test_a_child_dies_with_its_parent_even_after_sigkill():
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, stdin=subprocess.PIPE
    )
    child = int(parent.stdout.readline())
    pidfd = os.pidfd_open(child)
    assert parent.stdout.readline() == b"armed\n"
    try:
        parent.kill()
        parent.wait()
        # Waits for the child's exit; a child left running fails here.
        assert lifetime._first_exit([pidfd]) == pidfd
    finally:
        os.close(pidfd)
        parent.stdout.close()
        parent.stdin.close()


COPIES = """
import os, sys
from evosweep.runtime.lifetime import run_as_copies
run_as_copies(3)
os.write(1, b"%d\\n" % os.getpid())  # one write: the copies share the pipe
sys.exit(int(sys.stdin.readline()))  # the status a line tells one copy to exit with
"""


@contextlib.contextmanager
def _copies():
    """The parent of 3 copies, the copies' pids (each read once the copy runs) and a pidfd of
    each; whatever is left is killed on the way out."""
    parent = subprocess.Popen(
        [sys.executable, "-c", COPIES], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    pids = [int(parent.stdout.readline()) for _ in range(3)]
    pidfds = [os.pidfd_open(pid) for pid in pids]
    try:
        yield parent, pids, pidfds
    finally:
        parent.kill()  # its copies die with it
        parent.wait()
        for pidfd in pidfds:
            os.close(pidfd)
        parent.stdin.close()
        parent.stdout.close()


def _wait_for_exits(pidfds: list[int], count: int) -> None:
    """Returns once `count` of the processes have exited; reaching the bound fails the test."""
    poller = select.poll()
    for pidfd in pidfds:
        poller.register(pidfd, select.POLLIN)
    ended = set()
    while len(ended) < count:
        ready = poller.poll(EVENT_SECONDS * 1000)
        assert ready, f"{len(ended)} of {count} exited"
        for pidfd, _ in ready:
            poller.unregister(pidfd)
            ended.add(pidfd)


def test_copies_share_a_parent_that_passes_a_stop_on_and_reports_how_they_ended():
    with _copies() as (parent, pids, pidfds):
        assert len(set(pids)) == 3 and parent.pid not in pids
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(EVENT_SECONDS) == 128 + signal.SIGTERM  # they ended by SIGTERM
        _wait_for_exits(pidfds, 3)


STOPPED_WHILE_FORKING = """
import os, signal, sys
from evosweep.runtime.lifetime import run_as_copies
fork = os.fork

def fork_then_stop():
    child = fork()
    if child:  # a stop that reaches the parent before its handler is in place
        os.kill(os.getpid(), signal.SIGTERM)
    return child

os.fork = fork_then_stop
run_as_copies(3)
sys.stdin.read()  # a copy waits for a signal
"""


def test_a_stop_while_the_copies_start_is_passed_on_once_they_have():
    parent = subprocess.Popen([sys.executable, "-c", STOPPED_WHILE_FORKING], stdin=subprocess.PIPE)
    try:
        # 143, not -15: the parent outlived the signal and a copy ended by the SIGTERM passed on.
        assert parent.wait(EVENT_SECONDS) == 128 + signal.SIGTERM
    finally:
        parent.kill()
        parent.wait()
        parent.stdin.close()


def test_the_first_copy_to_fail_gives_the_parent_its_status_once_all_have_ended():
    with _copies() as (parent, _, pidfds):
        parent.stdin.write(b"3\n")  # one copy reads it and exits 3
        parent.stdin.flush()
        _wait_for_exits(pidfds, 1)
        assert parent.poll() is None  # the others still run
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(EVENT_SECONDS) == 3


def test_copies_die_with_their_parent_even_after_sigkill():
    with _copies() as (parent, _, pidfds):
        parent.kill()
        parent.wait()
        _wait_for_exits(pidfds, 3)


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)


def test_the_end_of_a_watched_process_calls_back():
    process = _sleeper()
    ended = []
    done = threading.Event()
    assert lifetime.when_any_ends([process.pid], lambda pid: (ended.append(pid), done.set()), "t")
    assert not done.is_set()
    process.stdin.close()
    assert done.wait(EVENT_SECONDS) and ended == [process.pid]
    process.wait()
    # One that has gone already (reaped): nothing is started, the caller acts.
    assert lifetime.when_any_ends([process.pid], ended.append, "t") is False


def test_an_owner_is_watched_by_its_record():
    process = _sleeper()
    record = rundirs.owner_record(process.pid)
    gone = threading.Event()
    lifetime.watch_owner(record, gone.set, strict=True)
    assert not gone.is_set() and not rundirs.owner_is_gone(record)
    process.stdin.close()
    process.wait()
    assert gone.wait(EVENT_SECONDS) and rundirs.owner_is_gone(record)
    # A gone owner counts at once when the owner must be visible, and not otherwise.
    called = []
    lifetime.watch_owner(record, lambda: called.append("strict"), strict=True)
    lifetime.watch_owner(record, lambda: called.append("not strict"), strict=False)
    assert called == ["strict"]
    # The same PID with another start time is another process: its owner is gone.
    reused = rundirs.owner_record() | {"start": rundirs.owner_record()["start"] + 1}
    assert rundirs.owner_is_gone(reused)


def test_run_directories_are_private_and_removed_once_their_owner_is_gone(tmp_path):
    mine = rundirs.create(tmp_path, "run-")
    assert mine.stat().st_mode & 0o777 == 0o700
    assert json.loads((mine / rundirs.OWNER_FILE).read_text())["pid"] == os.getpid()
    process = _sleeper()
    theirs = rundirs.create(tmp_path, "run-", rundirs.owner_record(process.pid))
    assert not rundirs.is_stale(mine) and not rundirs.is_stale(theirs)
    process.stdin.close()
    process.wait()
    assert rundirs.is_stale(theirs)
    newer = rundirs.create(tmp_path, "run-")  # removes the stale one beside it
    assert sorted(tmp_path.iterdir()) == sorted([mine, newer])


def test_listeners_bind_one_address():
    for wildcard in ("", "*", "0.0.0.0", "::", "[::]"):
        assert addresses.is_wildcard(wildcard)
    for narrow in ("127.0.0.1", "10.1.2.3", "node1"):
        assert not addresses.is_wildcard(narrow)
    assert addresses.bind_address(spans_nodes=False) == addresses.LOOPBACK


def test_the_engine_programs_are_modules_that_read_their_owner(monkeypatch):
    assert ENGINE_CMD[1:] == ["-m", "evosweep.engines.engine"]
    monkeypatch.delenv(OWNER_VARIABLE, raising=False)
    assert guard.owner() is None
    record = rundirs.owner_record()
    monkeypatch.setenv(OWNER_VARIABLE, json.dumps(record))
    assert guard.owner() == record
    guard.watch_owner(lambda: pytest.fail("this process is alive"), strict=True)


# A Snakemake scheduler holding its lock (handling a finished or failed job) when a SIGTERM
# comes: Snakemake's own handler would wait for that lock, held by the thread it interrupts.
SIGTERM_WHILE_SCHEDULING = """
import os, signal, threading
from snakemake.scheduling.job_scheduler import JobScheduler
from evosweep.runtime.snakemake import take_repeated_sigterms

take_repeated_sigterms()
scheduler = JobScheduler.__new__(JobScheduler)  # the attributes the handler uses, no workflow
scheduler._lock, scheduler._open_jobs = threading.Lock(), threading.Semaphore(0)
scheduler._user_kill = None
signal.signal(signal.SIGTERM, scheduler.exit_gracefully)
with scheduler._lock:
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)
print(scheduler._user_kill, scheduler._open_jobs.acquire(blocking=False))
"""


def test_snakemake_takes_a_sigterm_while_its_scheduler_holds_its_lock():
    done = subprocess.run(
        [sys.executable, "-c", SIGTERM_WHILE_SCHEDULING],
        capture_output=True,
        text=True,
        timeout=EVENT_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["graceful", "True"]
