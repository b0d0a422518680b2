"""Snakemake adapter for rule scaling_evolve (logic in evosweep.scaling)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from evosweep.logs import rule_logger  # noqa: E402
from evosweep.scaling import time_evolution, write_timing  # noqa: E402

with rule_logger(snakemake.log[0]) as log:  # noqa: F821
    workers = int(snakemake.wildcards.workers)  # noqa: F821
    timing = time_evolution(
        snakemake.params.problem,  # noqa: F821
        snakemake.params.spec,  # noqa: F821
        snakemake.params.seed,  # noqa: F821
        workers,
        log,
        model=snakemake.params.model,  # noqa: F821
        best_params_path=snakemake.input.get("best_params"),  # noqa: F821
        train=snakemake.input.get("train"),  # noqa: F821
    )
    write_timing(timing, snakemake.output[0])  # noqa: F821
    log.info("evolution on %d worker(s): %.1f s", workers, timing["wall_seconds"])
