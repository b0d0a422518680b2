"""Snakemake adapter for rule scaling_search (logic in evosweep.scaling)."""

from evosweep.lifeline import follow_snakemake
from evosweep.logs import rule_logger
from evosweep.scaling import time_search, write_timing

with rule_logger(snakemake.log[0]) as log:
    follow_snakemake()
    workers = int(snakemake.wildcards.workers)
    timing = time_search(
        snakemake.params.model,
        snakemake.params.spec,
        snakemake.params.seed,
        snakemake.input.train,
        workers,
        snakemake.params.repeats,
        tasks=snakemake.resources.get("tasks"),
        cpus_per_task=snakemake.resources.get("cpus_per_task"),
    )
    write_timing(timing, snakemake.output[0])
    log.info(
        "search on %d worker(s): fits %s s, start-up %s s",
        workers,
        timing["walls"],
        timing["startups"],
    )
