"""Kill an ipyparallel engine at a known point of its work: while it runs a task, not after a delay.

A task calls ``hang_if_victim(victim, fifo)``: on engine ``victim`` it tells the test through a
named pipe that it has started, then hangs until it is killed, so the kill always lands inside
a task whatever the host's speed. ``EngineKiller`` is the other end of the pipe.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import cloudpickle

# Engines cannot import tests/ modules: this module's functions and classes travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def hang_if_victim(victim: int, fifo: str, what: str = "task") -> None:
    """In a task: on engine ``victim``, report ``what`` started and hang until killed."""
    if os.getpid() != victim:
        return
    with open(fifo, "w") as pipe:  # opens once the killer listens
        pipe.write(what)
    threading.Event().wait()


def hanging_on_victim(estimator_class: type, victim: int, fifo: str) -> type:
    """A subclass of a scikit-learn estimator whose ``fit`` hangs on engine ``victim``."""

    class HangingOnVictim(estimator_class):
        def fit(self, *args, **kwargs):
            hang_if_victim(victim, fifo, "fit")
            return super().fit(*args, **kwargs)

    return HangingOnVictim


class EngineKiller:
    """SIGKILLs engine ``pid`` as soon as a task on it calls ``hang_if_victim(pid, fifo)``."""

    def __init__(self, pid: int, workdir: Path):
        self.pid = pid
        self.fifo = str(Path(workdir) / f"engine-{pid}-started")
        os.mkfifo(self.fifo)
        self.killed_during: str | None = None  # what the engine was running
        self._thread = threading.Thread(target=self._kill_when_told, daemon=True)
        self._thread.start()

    def _kill_when_told(self) -> None:
        with open(self.fifo) as pipe:  # blocks until the victim's task opens the other end
            what = pipe.read()
        os.kill(self.pid, signal.SIGKILL)
        self.killed_during = what

    def join(self) -> str:
        """What the engine was running when it was killed; fails if no task ever ran on it."""
        # Only a bound for the failure case: by now the kill has happened or never will.
        self._thread.join(timeout=30)
        assert self.killed_during is not None, f"no task ran on engine {self.pid}"
        return self.killed_during
