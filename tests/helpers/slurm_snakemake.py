"""`snakemake` for the Slurm tests, with the slurm executor plugin's status checks at a fixed rate.

After each check that saw no job finish, the plugin waits 10 s longer for the next (up to 3 min):
at a site that spares slurmdbd, but on the test cluster it only makes a test wait for jobs that
ended long ago (a 60 s job was noticed after 80 s, a 90 s one after 125 s). Here every check
waits `--seconds-between-status-checks`. The profile itself keeps the plugin's pace.

    python tests/helpers/slurm_snakemake.py SNAKEMAKE-ARGUMENTS...
"""

from __future__ import annotations

import sys

from snakemake_executor_plugin_slurm import Executor

# What the harness passes: checks every 2 s, at most one a second.
FAST_POLLING = [
    "--slurm-init-seconds-before-status-checks=2",
    "--seconds-between-status-checks=2",
    "--max-status-checks-per-second=1",
]


def _fixed_interval(executor) -> int:
    return executor.workflow.remote_execution_settings.seconds_between_status_checks


# The plugin sets this after every check; the setter ignores it, the getter answers the fixed rate.
Executor.next_seconds_between_status_checks = property(_fixed_interval, lambda executor, _: None)


COMMAND = [sys.executable, __file__]

if __name__ == "__main__":
    from snakemake.cli import main

    sys.argv[0] = "snakemake"
    sys.exit(main())
