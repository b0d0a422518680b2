"""Snakemake adapter for rule prepare_data (logic in evosweep.data)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from evosweep.data import prepare, write  # noqa: E402
from evosweep.logs import rule_logger  # noqa: E402

with rule_logger(snakemake.log[0]) as log:  # noqa: F821
    name = snakemake.wildcards.dataset  # noqa: F821
    log.info("preparing dataset %s from %s", name, snakemake.params.spec["source"])  # noqa: F821
    train, test, summary = prepare(name, snakemake.params.spec, snakemake.params.seed)  # noqa: F821
    write(train, test, summary, *snakemake.output)  # noqa: F821
    log.info("train %d rows, test %d rows, %d features", len(train), len(test), summary["features"])
