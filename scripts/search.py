"""Snakemake adapter for rules search and search_evolutionary (logic in evosweep.search)."""

from pathlib import Path

from evosweep.allocation import worker_count
from evosweep.logs import rule_logger
from evosweep.models import Model
from evosweep.runtime.snakemake import follow_snakemake
from evosweep.search import run

with rule_logger(snakemake.log[0]) as log:
    follow_snakemake()
    model = Model.from_config(snakemake.wildcards.model, snakemake.params.spec)
    tasks = snakemake.resources.get("tasks")
    log.info(
        "search %s: %s %s over %s", model.name, model.strategy, model.estimator, dict(model.space)
    )
    run(
        model,
        snakemake.params.seed,
        snakemake.input.train,
        snakemake.input.test,
        Path(snakemake.output.summary).parent,
        worker_count(snakemake.params.workers, snakemake.threads, tasks),
        checkpoint=snakemake.params.checkpoint,
        tasks=tasks,
        cpus_per_task=snakemake.resources.get("cpus_per_task"),
    )
