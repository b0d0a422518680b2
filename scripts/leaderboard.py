"""Snakemake adapter for rule leaderboard (logic in evosweep.search.leaderboard)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from evosweep.logs import rule_logger  # noqa: E402
from evosweep.search import leaderboard  # noqa: E402

with rule_logger(snakemake.log[0]) as log:  # noqa: F821
    table = leaderboard(snakemake.input, snakemake.output[0])  # noqa: F821
    log.info("leaderboard of %d model(s):\n%s", len(table), table.to_string(index=False))
