"""Snakemake adapter for rule prepare_data (logic in evosweep.data)."""

from evosweep.data import prepare, write
from evosweep.logs import rule_logger

with rule_logger(snakemake.log[0]) as log:
    name = snakemake.wildcards.dataset
    log.info("preparing dataset %s from %s", name, snakemake.params.spec["source"])
    train, test, summary = prepare(name, snakemake.params.spec, snakemake.params.seed)
    write(train, test, summary, *snakemake.output)
    log.info("train %d rows, test %d rows, %d features", len(train), len(test), summary["features"])
