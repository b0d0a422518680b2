"""A search's resume point: the fit journal beside its checkpoint, and their removal once the
outputs exist."""

from __future__ import annotations

import contextlib
import logging

from evosweep import journal as fit_journal

log = logging.getLogger(__name__)


def journal_identity(model, seed: int, features, labels) -> dict:
    """Everything that changes the fits of this search: its model, seed and data."""
    from joblib import hash as joblib_hash

    return {
        "search": model.name,
        "spec": model.to_config(),
        "seed": seed,
        "data": joblib_hash((features, labels)),
    }


@contextlib.contextmanager
def fit_journal_for(job):
    """The job's journal.FitJournal (None without a checkpoint), closed on the way out."""
    if job.checkpoint is None:
        yield None
        return
    identity = journal_identity(job.model, job.seed, job.features, job.labels)
    journal = fit_journal.FitJournal(fit_journal.path_for(job.checkpoint), identity)
    try:
        yield journal
    finally:
        journal.close()


def where_kept(checkpoint) -> str:
    return str(fit_journal.path_for(checkpoint)) if checkpoint else "nowhere (no checkpoint)"


def log_resumed(journal) -> None:
    """How much of the search the journal answered (None: no journal, nothing to say)."""
    if journal is not None:
        log.info(
            "resumed %d of %d fits from the journal; %d sent to the engines",
            journal.reused,
            journal.reused + journal.sent,
            journal.sent,
        )
