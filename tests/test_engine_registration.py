"""Registration on a loaded machine: every engine that registers is counted, however slowly
the machine lets it start.

With 32 local engines the first ones register while the rest are still being launched; a
client that connected only then missed the hub's notice of whichever engine registered before
its subscription took effect (1 or 2 of 32, in 5 starts of 5 under two CPU burners).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

from evosweep.engines import engine_cluster

ENGINES = 32
# Only guards against a hang: the start ends when the last engine is counted.
HANG_GUARD_SECONDS = 600


@contextlib.contextmanager
def cpu_burners(count: int):
    """`count` processes that spin on a CPU each until the block ends."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield burners
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


def test_every_engine_of_a_loaded_start_is_counted():
    with cpu_burners(os.cpu_count() or 2) as burners:
        with engine_cluster(ENGINES, slurm=False, timeout=HANG_GUARD_SECONDS) as engines:
            assert all(burner.poll() is None for burner in burners)  # loaded throughout
            assert len(engines.client.ids) == ENGINES
            # every counted engine answers, each a process of its own
            assert len(set(engines.engine_pids())) == ENGINES
