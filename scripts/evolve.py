"""Snakemake adapter for rules evolve and evolve_pareto (logic in evosweep.evolve.stage)."""

from pathlib import Path

from evosweep.allocation import worker_count
from evosweep.evolve.stage import run_problem, scoring_model
from evosweep.logs import rule_logger
from evosweep.runtime.snakemake import follow_snakemake

with rule_logger(snakemake.log[0]):
    follow_snakemake()
    run_problem(
        snakemake.wildcards.problem,
        snakemake.params.spec,
        snakemake.params.seed,
        worker_count(snakemake.params.workers, snakemake.threads, snakemake.resources.get("tasks")),
        Path(snakemake.output.logbook).parent,
        snakemake.params.checkpoint,
        model=scoring_model(snakemake.params.spec, snakemake.params.model),
        best_params_path=snakemake.input.get("best_params"),
        train=snakemake.input.get("train"),
    )
