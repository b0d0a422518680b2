"""A journal of finished work that survives SIGKILL, so a killed search or evolution redoes only
what was in flight.

- `store`: the SQLite store (`Journal`: open, `lookup`, `record`; `remove_files`), used as is for
  evolution evaluations keyed by genome.
- `fits`: scikit-learn's fits as the joblib backend sees them (`FitJournal.submit`).
- `sklearn_joblib`: the scikit-learn and joblib internals that relies on, in one place.
"""

from evosweep.journal.fits import FitJournal
from evosweep.journal.store import (
    Journal,
    fingerprint,
    path_for,
    remove_files,
    remove_resume_point,
)

__all__ = [
    "FitJournal",
    "Journal",
    "fingerprint",
    "path_for",
    "remove_files",
    "remove_resume_point",
]
