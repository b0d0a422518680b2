"""Snakemake adapter for rule scaling_evolve (logic in evosweep.scaling)."""

from evosweep.lifeline import follow_snakemake
from evosweep.logs import rule_logger
from evosweep.scaling import time_evolution, write_timing

with rule_logger(snakemake.log[0]) as log:
    follow_snakemake()
    workers = int(snakemake.wildcards.workers)
    timing = time_evolution(
        snakemake.params.problem,
        snakemake.params.spec,
        snakemake.params.seed,
        workers,
        snakemake.params.repeats,
        model=snakemake.params.model,
        best_params_path=snakemake.input.get("best_params"),
        train=snakemake.input.get("train"),
    )
    write_timing(timing, snakemake.output[0])
    log.info(
        "evolution on %d worker(s): generations %s s, start-up and stop %s s",
        workers,
        timing["walls"],
        timing["startups"],
    )
