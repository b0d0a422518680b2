"""The supervision of one SCOOP run (scoop_launcher.ScoopRun), in two threads of the launching
process, whether or not anyone reads the run's lines:

- the watcher waits on the processes' pidfds. Once the origin or the broker ends, it closes the
  workers' input (they leave at its end) and gives whatever is left GRACE_SECONDS (the origin,
  to write its result; the broker and the workers, to follow the origin's shutdown message)
  before SIGTERM, then KILL_SECONDS before SIGKILL: a worker's srun step that ends by itself
  ends COMPLETED, one that srun is told to end, CANCELLED;
- the reader splits the processes' merged stderr into lines, counts the workers' ready lines and
  tells the origin once every worker but it takes tasks, or once one has died first
  (scoop_secure.wait_for_workers). Each line goes to `on_line`, or else to `lines()`; a run
  whose lines nobody takes then waits on its stderr, as a pipe's writer does.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import signal
import threading
import time
from collections.abc import Callable, Iterator

from evosweep.evolve import scoop_secure

# After the origin ends, the broker gets this long to leave on its own (SCOOP's shutdown message)
# before the rest is terminated; a process still there this long after SIGTERM gets SIGKILL.
GRACE_SECONDS = 10.0
KILL_SECONDS = 10.0
_END = None  # what lines() gets after the last line


class Supervisor:
    """The threads that supervise `run` (a started ScoopRun) and read its stderr `stderr_fd`.

    ready_fd: the write end of the origin's readiness pipe, or None when nothing is awaited.
    on_line: called with each stderr line (in the reader's thread); None: `lines()` yields them.
    """

    def __init__(self, run, stderr_fd: int, ready_fd: int | None, on_line: Callable | None):
        self.run = run
        self._stderr_fd = stderr_fd
        self._ready_fd = ready_fd
        self._awaited = run.workers - 1
        self._ready_lock = threading.Lock()
        self._on_line = on_line
        # One line at a time: a reader that stops taking lines holds the run, as a pipe does.
        self._lines: queue.Queue = queue.Queue(maxsize=1)
        self._closed = False
        self._wake_read, self._wake_write = os.pipe()
        processes = [(run.origin, "end"), (run.broker, "end")]
        processes += [(worker, "worker") for worker in [*run.workers_here, *run.steps]]
        # Opened now, before anything can reap a process: its pidfd stays valid after that.
        self._pidfds = [(os.pidfd_open(process.pid), role) for process, role in processes]
        self._threads = [
            threading.Thread(target=self._watch, name="scoop-watcher", daemon=True),
            threading.Thread(target=self._read, name="scoop-reader", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------------- readiness

    def release_origin(self, ready: bool) -> None:
        """Tell the origin that every worker is ready (b"1"), or that one died first (EOF)."""
        with self._ready_lock:
            if self._ready_fd is None:
                return
            try:
                if ready:
                    os.write(self._ready_fd, b"1")
            except BrokenPipeError:  # the origin is gone
                pass
            os.close(self._ready_fd)
            self._ready_fd = None

    def _count_ready(self, line: str) -> None:
        if self._ready_fd is not None and line.startswith(scoop_secure.READY_LINE):
            self._awaited -= 1
            if self._awaited == 0:
                self.release_origin(ready=True)

    # ---------------------------------------------------------------------------- threads

    def _watch(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_read, selectors.EVENT_READ, "stop")
        for pidfd, role in self._pidfds:
            selector.register(pidfd, selectors.EVENT_READ, role)
        deadline, next_signal = None, signal.SIGTERM
        try:
            while len(selector.get_map()) > 1:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                events = selector.select(timeout)
                if not events and deadline is not None:
                    self.run.signal_all(next_signal)
                    last = next_signal == signal.SIGKILL
                    deadline = None if last else time.monotonic() + KILL_SECONDS
                    next_signal = signal.SIGKILL
                for key, _ in events:
                    if key.data == "stop":
                        return
                    selector.unregister(key.fd)
                    # The origin no longer waits for the workers once one of the run is gone.
                    self.release_origin(ready=False)
                    if key.data == "end" and next_signal == signal.SIGTERM and deadline is None:
                        self.run.end_workers_input()
                        deadline = time.monotonic() + GRACE_SECONDS
        finally:
            selector.close()

    def _read(self) -> None:
        pending = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._stderr_fd, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while True:
                ready = {key.fd for key, _ in selector.select()}
                chunk = os.read(self._stderr_fd, 65536) if self._stderr_fd in ready else b""
                if not chunk:  # every process has closed its stderr, or the run is stopped
                    if pending:
                        self._deliver(pending.decode(errors="replace"))
                    self._deliver(_END)
                    return
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    text = line.decode(errors="replace")
                    self._count_ready(text)
                    self._deliver(text)

    def _deliver(self, line: str | None) -> None:
        if self._on_line is not None:
            if line is not _END:
                self._on_line(line)
        elif not self._closed:
            self._lines.put(line)

    # ---------------------------------------------------------------------------- callers

    def lines(self) -> Iterator[str]:
        """Every process's stderr, line by line, until all have exited."""
        if self._on_line is not None:
            raise RuntimeError("this run's lines go to its on_line callback")
        while (line := self._lines.get()) is not _END:
            yield line
        self._lines.put(_END)  # for a later call

    def wait(self) -> None:
        """Until every line is delivered (the processes have all exited)."""
        self._threads[1].join()

    def close(self) -> None:
        """Stop both threads (the run's processes are gone) and close what they used."""
        self.release_origin(ready=False)
        self._closed = True  # from now on the reader puts nothing in the queue
        os.write(self._wake_write, b"x")
        with contextlib.suppress(queue.Empty):
            self._lines.get_nowait()  # a reader waiting for room in the queue gets it
        for thread in self._threads:
            thread.join()
        for fd in [self._stderr_fd, self._wake_read, self._wake_write]:
            os.close(fd)
        for pidfd, _ in self._pidfds:
            os.close(pidfd)
