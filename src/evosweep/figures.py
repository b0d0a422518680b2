"""Figures written to image files, through matplotlib's object API: a Figure of its own per
plot, so no pyplot figure registry to close and nothing that looks for a display."""

from __future__ import annotations

import contextlib
from pathlib import Path


@contextlib.contextmanager
def saved_figure(path, dpi: int = 110, figsize=None, **subplots):
    """Yield (figure, axes) of a new figure (`subplots`: Figure.subplots' arguments, e.g. nrows,
    ncols, sharey, squeeze) for the caller to draw; on leaving without an error, lay it out
    and write it to `path`, its folder made if missing."""
    import matplotlib

    # scikit-learn's displays import pyplot even when given axes; Agg keeps it headless.
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    yield figure, figure.subplots(**subplots)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
