"""SIGTERM, SIGINT and SIGUSR1 stop a run with one exception, in the main thread.

Slurm sends SIGTERM at the time limit (SIGUSR1 before it when asked to warn), Snakemake SIGTERM
on a cancel, a terminal SIGINT: each raises `Interrupted`, a SystemExit whose status is 128 +
the signal's number, so every `finally` on the way out stops the workers it started and leaves
the journal and checkpoint usable. A process with its own policy (the evolution origin
checkpoints at once) passes `on_signal` instead.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class Interrupted(SystemExit):
    """A signal asked the run to stop; the exit status is 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


def signal_name(exit_status) -> str:
    """SIGTERM for 143 (128 + 15), the way shells report a process ended by a signal."""
    try:
        return signal.Signals(int(exit_status) - 128).name
    except (TypeError, ValueError):
        return f"exit status {exit_status}"


@contextlib.contextmanager
def stop_on_signals(
    signals: Iterable[int] = STOP_SIGNALS, on_signal: Callable[[int], None] | None = None
):
    """While inside, the first of `signals` raises Interrupted in the main thread, or calls
    `on_signal(signum)` instead (which may stop at once or later); later signals are ignored
    while the run stops. The previous handlers come back on the way out. Outside the main
    thread nothing is installed: signals reach only the main thread, whose owner handles them."""
    signals = tuple(signals)
    previous = {}

    def stop(signum, frame):
        for other in signals:  # a second signal must not cut the clean-up short
            signal.signal(other, signal.SIG_IGN)
        if on_signal is None:
            raise Interrupted(signum)
        on_signal(signum)

    try:
        for signum in signals:
            previous[signum] = signal.signal(signum, stop)
    except ValueError:  # not the main thread
        _restore(previous)
        yield
        return
    try:
        yield
    finally:
        _restore(previous)


def _restore(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
