"""Snakemake adapter for rules evolve and evolve_pareto (logic in evosweep.evolve)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from evosweep.evolve.runner import default_workers  # noqa: E402
from evosweep.evolve.stage import run_problem  # noqa: E402
from evosweep.logs import rule_logger  # noqa: E402

with rule_logger(snakemake.log[0]) as log:  # noqa: F821
    run_problem(
        snakemake.wildcards.problem,  # noqa: F821
        snakemake.params.spec,  # noqa: F821
        snakemake.params.seed,  # noqa: F821
        default_workers(
            snakemake.params.workers,  # noqa: F821
            snakemake.threads,  # noqa: F821
            snakemake.resources.get("tasks"),  # noqa: F821
        ),
        Path(snakemake.output.logbook).parent,  # noqa: F821
        snakemake.params.checkpoint,  # noqa: F821
        log,
        model=snakemake.params.model,  # noqa: F821
        best_params_path=snakemake.input.get("best_params"),  # noqa: F821
        train=snakemake.input.get("train"),  # noqa: F821
    )
