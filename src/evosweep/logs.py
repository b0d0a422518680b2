"""Per-rule logging: progress lines go to the rule's log file (and stderr)."""

from __future__ import annotations

import contextlib
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
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
