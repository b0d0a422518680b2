"""Snakemake adapter for rule scaling_search (logic in evosweep.scaling)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from evosweep.logs import rule_logger  # noqa: E402
from evosweep.scaling import time_search, write_timing  # noqa: E402

with rule_logger(snakemake.log[0]) as log:  # noqa: F821
    workers = int(snakemake.wildcards.workers)  # noqa: F821
    timing = time_search(
        snakemake.params.model,  # noqa: F821
        snakemake.params.spec,  # noqa: F821
        snakemake.params.seed,  # noqa: F821
        snakemake.input.train,  # noqa: F821
        snakemake.input.test,  # noqa: F821
        workers,
        log,
        tasks=snakemake.resources.get("tasks"),  # noqa: F821
        cpus_per_task=snakemake.resources.get("cpus_per_task"),  # noqa: F821
    )
    write_timing(timing, snakemake.output[0])  # noqa: F821
    log.info("search on %d worker(s): %.1f s", workers, timing["wall_seconds"])
