"""Snakemake adapter for rule scaling_table (logic in evosweep.scaling)."""

from evosweep.logs import rule_logger
from evosweep.scaling import plot, table

with rule_logger(snakemake.log[0]) as log:
    frame = table(snakemake.input)
    frame.to_csv(snakemake.output.table, index=False)
    plot(frame, snakemake.output.figure, dpi=snakemake.params.dpi)
    for row in frame.itertuples():
        log.info(
            "%s %s: %d worker(s) %.1f s, speedup %.2f",
            row.stage,
            row.name,
            row.workers,
            row.wall_seconds,
            row.speedup,
        )
