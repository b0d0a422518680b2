"""Waiting for an event that has no notification of its own (a file, a log line, a process
ending), with a bound that only guards against a hang."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """Call `condition()` until it returns something true, or `timeout` seconds have passed;
    return its last value (false at the bound: the caller says what did not happen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
