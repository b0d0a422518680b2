"""Snakemake adapter for rule scaling_table (logic in evosweep.scaling)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from evosweep.logs import rule_logger  # noqa: E402
from evosweep.scaling import plot, table  # noqa: E402

with rule_logger(snakemake.log[0]) as log:  # noqa: F821
    frame = table(snakemake.input)  # noqa: F821
    frame.to_csv(snakemake.output.table, index=False)  # noqa: F821
    plot(frame, snakemake.output.figure, dpi=snakemake.params.dpi)  # noqa: F821
    for row in frame.itertuples():
        log.info(
            "%s %s: %d worker(s) %.1f s, speedup %.2f",
            row.stage,
            row.name,
            row.workers,
            row.wall_seconds,
            row.speedup,
        )
