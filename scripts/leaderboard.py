"""Snakemake adapter for rule leaderboard (logic in evosweep.search.leaderboard)."""

from evosweep.logs import rule_logger
from evosweep.search import leaderboard

with rule_logger(snakemake.log[0]) as log:
    table = leaderboard(snakemake.input, snakemake.output[0])
    log.info("leaderboard of %d model(s):\n%s", len(table), table.to_string(index=False))
