"""Snakemake adapter for rule resources_table (logic in evosweep.resources)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from evosweep.logs import rule_logger  # noqa: E402
from evosweep.resources import collect, plot  # noqa: E402

with rule_logger(snakemake.log[0]) as log:  # noqa: F821
    table = collect(snakemake.input)  # noqa: F821
    table.to_csv(snakemake.output.table, index=False)  # noqa: F821
    plot(table, snakemake.output.figure, dpi=snakemake.params.dpi)  # noqa: F821
    log.info("resources of %d jobs -> %s", len(table), snakemake.output.table)  # noqa: F821
