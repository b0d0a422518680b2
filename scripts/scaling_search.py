"""Snakemake adapter for rule scaling_search (logic in evosweep.scaling)."""

from evosweep.logs import rule_logger
from evosweep.models import Model
from evosweep.runtime.snakemake import follow_snakemake
from evosweep.scaling import time_search, write_timings

with rule_logger(snakemake.log[0]):
    follow_snakemake()
    points = time_search(
        Model.from_config(snakemake.params.model, snakemake.params.spec),
        snakemake.params.seed,
        snakemake.input.train,
        snakemake.params.counts,
        snakemake.params.repeats,
        tasks=snakemake.resources.get("tasks"),
        cpus_per_task=snakemake.resources.get("cpus_per_task"),
    )
    write_timings(points, snakemake.output[0])
