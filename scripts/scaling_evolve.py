"""Snakemake adapter for rule scaling_evolve (logic in evosweep.scaling)."""

from evosweep.evolve.stage import scoring_model
from evosweep.logs import rule_logger
from evosweep.runtime.snakemake import follow_snakemake
from evosweep.scaling import time_evolution, write_timings

with rule_logger(snakemake.log[0]):
    follow_snakemake()
    points = time_evolution(
        snakemake.params.problem,
        snakemake.params.spec,
        snakemake.params.seed,
        snakemake.params.counts,
        snakemake.params.repeats,
        model=scoring_model(snakemake.params.spec, snakemake.params.model),
        best_params_path=snakemake.input.get("best_params"),
        train=snakemake.input.get("train"),
    )
    write_timings(points, snakemake.output[0])
