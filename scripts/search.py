"""Snakemake adapter for rule search (logic in evosweep.search and evosweep.engines)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from evosweep.engines import in_slurm_allocation  # noqa: E402
from evosweep.logs import rule_logger  # noqa: E402
from evosweep.search import run  # noqa: E402

with rule_logger(snakemake.log[0]) as log:  # noqa: F821
    name = snakemake.wildcards.model  # noqa: F821
    spec = snakemake.params.spec  # noqa: F821
    # null engines: the job's tasks on Slurm (engine_cluster's default), else the rule's threads.
    engines = snakemake.params.engines  # noqa: F821
    tasks = snakemake.resources.get("tasks")  # noqa: F821
    if engines is None and not in_slurm_allocation(tasks):
        engines = snakemake.threads  # noqa: F821
    log.info("search %s: %s %s over %s", name, spec["strategy"], spec["estimator"], spec["space"])
    run(
        name,
        spec,
        snakemake.params.seed,  # noqa: F821
        snakemake.input.train,  # noqa: F821
        snakemake.input.test,  # noqa: F821
        Path(snakemake.output.summary).parent,  # noqa: F821
        n_engines=engines,
        logger=log,
        tasks=tasks,
        cpus_per_task=snakemake.resources.get("cpus_per_task"),  # noqa: F821
    )
