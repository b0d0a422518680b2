"""Per-rule logging: progress lines go to the rule's log file (and stderr); a rule's script
ends within it."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import traceback
from pathlib import Path


@contextlib.contextmanager
def rule_logger(path: str | Path, name: str = "evosweep"):
    """Log to `path` and stderr; on failure, write the one-line error and the traceback to the log."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    handlers = [logging.FileHandler(path, mode="w"), logging.StreamHandler(sys.stderr)]
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield logger
    except Exception as error:
        logger.error("%s", error)
        with open(path, "a") as handle:
            traceback.print_exc(file=handle)
        raise
    else:
        if _in_snakemake_script():
            # The job's outputs are written and closed. Its exit then skips the garbage
            # collection of every imported module's objects, which frees nothing for anyone.
            gc.freeze()
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()


def _in_snakemake_script() -> bool:
    """This process is a rule's `script:`, whose preamble puts `snakemake` into __main__."""
    return hasattr(sys.modules.get("__main__"), "snakemake")
