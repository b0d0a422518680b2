"""Snakemake adapter for rule search_evolutionary (logic in evosweep.evolve.stage)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from evosweep.evolve.runner import default_workers  # noqa: E402
from evosweep.evolve.stage import run_evolutionary_search  # noqa: E402
from evosweep.logs import rule_logger  # noqa: E402

with rule_logger(snakemake.log[0]) as log:  # noqa: F821
    run_evolutionary_search(
        snakemake.wildcards.model,  # noqa: F821
        snakemake.params.spec,  # noqa: F821
        snakemake.params.seed,  # noqa: F821
        default_workers(
            snakemake.params.workers,  # noqa: F821
            snakemake.threads,  # noqa: F821
            snakemake.resources.get("tasks"),  # noqa: F821
        ),
        snakemake.input.train,  # noqa: F821
        snakemake.input.test,  # noqa: F821
        Path(snakemake.output.summary).parent,  # noqa: F821
        snakemake.params.checkpoint,  # noqa: F821
        log,
    )
