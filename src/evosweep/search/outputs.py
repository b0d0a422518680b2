"""What every search strategy writes: cv_results.csv, best_params.json, best_model.joblib,
test_scores.json and summary.json (one leaderboard row); and the leaderboard itself."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evosweep.models import Model

TIMING_COLUMNS = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")
SUMMARY_KEYS = (
    "model",
    "task",
    "strategy",
    "scoring",
    "best_score",
    "best_score_std",
    "test_score",
    "n_candidates",
    "n_fits",
    "wall_seconds",
    "workers",
)


@dataclass
class SearchOutcome:
    """A finished search, whatever the strategy. `extra`: strategy-specific summary fields."""

    cv_results: Any  # DataFrame, one row per candidate
    best_params: dict
    best_model: Any  # fitted on the whole training set
    best_score: float
    best_score_std: float
    n_candidates: int
    n_fits: int
    wall_seconds: float
    workers: int
    extra: dict = field(default_factory=dict)
    float_format: str | None = None
    # Seconds from the start to each cv_results row's score, where the strategy records them.
    history: Any = None


def jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(jsonable(data), indent=2) + "\n")


def cv_results_frame(cv_results: dict):
    """Every candidate of a scikit-learn search, one row: params, scores, times, ranks."""
    import pandas as pd

    frame = pd.DataFrame(cv_results).drop(columns=["params"])
    frame = frame.drop(columns=[c for c in frame.columns if re.match(r"split\d+_", c)])
    for column in frame.columns:
        if column.startswith("param_"):
            frame[column] = frame[column].astype(object)
    return frame


def shown_params(frame):
    """cv_results with each parameter value as the config spells it: null for None (no
    scaler, no max_depth; pandas holds it as NaN), not an empty cell."""

    def shown(value):
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return "null" if missing else value

    for column in frame.columns:
        if column.startswith("param_"):
            frame[column] = frame[column].map(shown)
    return frame


def write_outputs(model: Model, outcome: SearchOutcome, test_path, out_dir) -> dict:
    """Write every output file of the search; return the summary."""
    import joblib

    from evosweep.data import read_split
    from evosweep.pipeline import portable

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shown_params(outcome.cv_results).to_csv(
        out_dir / "cv_results.csv", index=False, float_format=outcome.float_format
    )
    write_json(out_dir / "best_params.json", outcome.best_params)
    joblib.dump(portable(outcome.best_model), out_dir / "best_model.joblib")
    features, labels = read_split(test_path)
    scores = model.test_scores(outcome.best_model, features, labels)
    write_json(out_dir / "test_scores.json", scores)
    summary = {
        "model": model.name,
        "task": model.task,
        "strategy": model.strategy,
        "scoring": model.scoring,
        "best_score": float(outcome.best_score),
        "best_score_std": float(outcome.best_score_std),
        "test_score": model.test_score(scores),
        "n_candidates": int(outcome.n_candidates),
        "n_fits": int(outcome.n_fits),
        "wall_seconds": round(outcome.wall_seconds, 3),
        "workers": int(outcome.workers),
        "best_params": outcome.best_params,
        **outcome.extra,
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def leaderboard(summary_paths, out_path):
    """One row per model from its summary.json: grouped by task and scoring, best CV score
    first (every scorer is greater-is-better, `neg_*` included; tasks.rank)."""
    import pandas as pd

    from evosweep.tasks import rank

    rows = []
    for path in summary_paths:
        summary = json.loads(Path(path).read_text())
        rows.append({key: summary.get(key) for key in SUMMARY_KEYS})
    frame = rank(pd.DataFrame(rows, columns=list(SUMMARY_KEYS)))
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_path, index=False)
    return frame
