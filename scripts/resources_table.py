"""Snakemake adapter for rule resources_table (logic in evosweep.resources)."""

from evosweep.logs import rule_logger
from evosweep.resources import collect, plot

with rule_logger(snakemake.log[0]) as log:
    table = collect(snakemake.input)
    table.to_csv(snakemake.output.table, index=False)
    plot(table, snakemake.output.figure, dpi=snakemake.params.dpi)
    log.info("resources of %d jobs -> %s", len(table), snakemake.output.table)
