"""Data stage: load a dataset, validate it, split it reproducibly, summarise it."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evosweep import tasks
from evosweep.errors import ConfigError, DataError
from evosweep.preprocess import Columns

if TYPE_CHECKING:
    import pandas as pd

# numpy, pandas and scikit-learn are imported where used: the Snakefile imports this module to
# check user files, and a no-op `snakemake -n` should not pay for scikit-learn.

log = logging.getLogger(__name__)
TARGET = "target"  # the label column's name in every file the data stage writes
SKLEARN_LOADERS = {
    "digits": "load_digits",
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "iris": "load_iris",
}


def source_path(spec: dict) -> str | None:
    """The file behind a csv:/parquet: source, else None."""
    kind, _, path = spec["source"].partition(":")
    return path if kind in {"csv", "parquet"} else None


def _shown(value) -> str:
    """A label as the user wrote it: 0, not np.int64(0)."""
    return repr(value.item() if hasattr(value, "item") else value)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _frame_hash(frame: pd.DataFrame) -> str:
    import pandas as pd

    return _sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes())


def load(name: str, spec: dict, seed: int) -> tuple[pd.DataFrame, str]:
    """Return (frame with feature columns and, if supervised, a `target` column, source hash)."""
    import pandas as pd
    from sklearn import datasets as sk_datasets

    source = spec["source"]
    kind, _, rest = source.partition(":")
    if kind == "sklearn":
        bunch = getattr(sk_datasets, SKLEARN_LOADERS[rest])()
        names = getattr(bunch, "feature_names", None)
        columns = [str(c) for c in names] if names is not None else None
        frame = pd.DataFrame(bunch.data, columns=columns)
        if columns is None:
            frame.columns = [f"x{i}" for i in range(frame.shape[1])]
        frame[TARGET] = bunch.target
        return frame, _frame_hash(frame)
    if kind == "blobs":
        # centers >= 1 is enforced by the schema; a fixed seed makes the blobs reproducible.
        features, labels = sk_datasets.make_blobs(
            n_samples=spec["n_samples"],
            centers=spec["centers"],
            n_features=spec["n_features"],
            cluster_std=spec["cluster_std"],
            random_state=seed,
        )
        frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(features.shape[1])])
        frame[TARGET] = labels
        return frame, _frame_hash(frame)
    return _load_file(name, spec, kind, Path(rest))


def _load_file(name: str, spec: dict, kind: str, path: Path) -> tuple[pd.DataFrame, str]:
    import pandas as pd

    where = f"datasets.{name}.source"
    if not path.is_file():
        raise DataError(f"data error at {where}: file {str(path)!r} not found (check the path)")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"data error at {where}: file {str(path)!r} is empty")
    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the file's fault
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"data error at {where}: cannot read {kind} file {str(path)!r}: {first}"
        ) from exc
    if frame.shape[0] == 0:
        raise DataError(f"data error at {where}: file {str(path)!r} has a header but no rows")
    target = spec.get("target")
    if target is not None:
        if target not in frame.columns:
            columns = ", ".join(map(str, frame.columns[:20]))
            raise DataError(
                f"data error at datasets.{name}.target: column {target!r} not in {str(path)!r}; "
                f"columns are: {columns}"
            )
        if target != TARGET and TARGET in frame.columns:
            raise DataError(
                f"data error at {where}: file {str(path)!r} has a feature column named {TARGET!r}; "
                f"rename it (that name is reserved for the label)"
            )
        frame = frame.rename(columns={target: TARGET})
    return frame, _sha256(raw)


def validate(name: str, spec: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """Check features and labels; return the frame ready to split.

    Rows without a target are dropped (logged with their count). Missing feature values are
    kept: a model's `preprocess.impute` fills them inside each fold, and the model checks stop a
    model that cannot take them. Text columns are kept for the model's `preprocess.categorical`,
    or one-hot encoded here with the dataset's `categorical: onehot` (a gap: all zeros).
    Infinite values are an error."""
    import pandas as pd

    where = f"datasets.{name}"
    features = frame.drop(columns=[TARGET], errors="ignore")
    if features.shape[1] == 0:
        raise DataError(f"data error at {where}: no feature columns besides the target")
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text and spec["categorical"] == "onehot":
        features = pd.get_dummies(features, columns=text, dtype=float)
    _check_finite(features, where)
    features.columns = [str(c) for c in features.columns]
    if TARGET in frame.columns:
        labels = frame[TARGET]
        missing = labels.isna().to_numpy()
        if missing.all():
            raise DataError(f"data error at {where}.target: every row's target is missing")
        if missing.any():
            log.info("dataset %s: dropped %d row(s) whose target is missing", name, missing.sum())
            features, labels = features[~missing], labels[~missing]
        features = features.reset_index(drop=True)
        features[TARGET] = labels.to_numpy()
    return features


def _check_finite(features: pd.DataFrame, where: str) -> None:
    """Infinite values: one line with their count, columns and rows."""
    import numpy as np

    numeric = features.select_dtypes("number")
    bad = numeric.isin([np.inf, -np.inf])
    if not bad.values.any():
        return
    places = []
    for column in bad.columns[bad.any()]:
        rows = np.flatnonzero(bad[column].to_numpy())
        shown = ", ".join(str(r + 1) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        places.append(f"column {column!r} row(s) {shown}")
    raise DataError(
        f"data error at {where}: {int(bad.values.sum())} infinite (inf/-inf) value(s) in "
        f"features: {'; '.join(places[:5])} (rows count from 1 after the header); "
        f"replace or drop them"
    )


def task_of(name: str, spec: dict, frame: pd.DataFrame) -> tuple[str, str]:
    """(task, where it comes from): `datasets.NAME.task` checked against the target, else
    inferred from it (blobs are clustering: their labels only score the test set)."""
    labels = frame[TARGET] if TARGET in frame.columns else None
    given = spec.get("task")
    if given is not None:
        tasks.check_target(given, labels, f"datasets.{name}.task")
        task, source = given, "config"
    elif spec["source"] == "blobs":
        task, source = "clustering", "inferred: blobs are clusters"
    else:
        task, why = tasks.infer(labels)
        source = f"inferred: {why}"
    if task == "classification" and labels.nunique() < 2:
        raise DataError(
            f"data error at datasets.{name}.target: a single class ({_shown(labels.iloc[0])}); "
            f"classification needs at least 2 classes"
        )
    if task == "regression" and labels.nunique() < 2:
        raise DataError(
            f"data error at datasets.{name}.target: the target is constant ({_shown(labels.iloc[0])}); "
            f"regression needs varying values"
        )
    return task, source


def split(name: str, spec: dict, frame: pd.DataFrame, seed: int, task: str):
    """Reproducible train/test split, stratified by label when the labels are classes.

    `stratify` null (the default) stratifies classification and labelled clustering tables;
    true asks for it, which a regression target cannot give (a ConfigError saying so)."""
    from sklearn.model_selection import train_test_split

    asked = spec.get("stratify")
    if asked and task == "regression":
        raise ConfigError(
            f"datasets.{name}.stratify",
            "a regression target is continuous and has no classes to stratify by; "
            "remove stratify or set it to false",
        )
    stratify = None
    if asked is not False and task != "regression" and TARGET in frame.columns:
        counts = frame[TARGET].value_counts()
        if counts.min() < 2:
            raise DataError(
                f"data error at datasets.{name}.stratify: class {_shown(counts.idxmin())} has a single "
                f"row; add rows or set stratify: false"
            )
        stratify = frame[TARGET]
    try:
        train, test = train_test_split(
            frame, test_size=spec["test_size"], random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        raise DataError(f"data error at datasets.{name}.test_size: {exc}") from exc
    return train.reset_index(drop=True), test.reset_index(drop=True)


@dataclass(frozen=True)
class Profile:
    """What the model checks need of a dataset before any job: its task and its columns."""

    task: str
    task_source: str
    columns: Columns

    @classmethod
    def from_summary(cls, summary: dict) -> Profile:
        return cls(summary["task"], summary["task_source"], Columns.from_summary(summary))


def prepare(name: str, spec: dict, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Load, validate and split; return (train, test, summary)."""
    loaded, digest = load(name, spec, seed)
    frame = validate(name, spec, loaded)
    task, task_source = task_of(name, spec, frame)
    log.info("dataset %s: %s task (%s)", name, task, task_source)
    train, test = split(name, spec, frame, seed, task)
    features = frame.drop(columns=[TARGET], errors="ignore")
    summary = {
        "dataset": name,
        "source": spec["source"],
        "source_sha256": digest,
        "task": task,
        "task_source": task_source,
        "rows": int(len(frame)),
        "rows_dropped_missing_target": int(len(loaded) - len(frame)),
        "features": int(features.shape[1]),
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        "test_size": spec["test_size"],
        "seed": seed,
        "supervised": TARGET in frame.columns,
        **Columns.of(features).summary(),
    }
    summary.update(_target_summary(task, frame))
    return train, test, summary


def _target_summary(task: str, frame: pd.DataFrame) -> dict:
    if TARGET not in frame.columns:
        return {}
    labels = frame[TARGET]
    if task == "regression":
        stats = labels.describe()
        return {"target_stats": {k: float(stats[k]) for k in ("min", "max", "mean", "std")}}
    counts = labels.value_counts().sort_index()
    return {
        "classes": int(len(counts)),
        "class_counts": {str(k): int(v) for k, v in counts.items()},
    }


def preflight(datasets: dict, seed: int) -> dict[str, Profile]:
    """Validate and split every dataset before any job runs (bad user files and bad task or
    stratify settings stop the run); return each one's Profile for the model checks."""
    profiles = {}
    for name, spec in datasets.items():
        _, _, summary = prepare(name, spec, seed)
        profiles[name] = Profile.from_summary(summary)
    return profiles


def write(train, test, summary, train_path, test_path, summary_path) -> None:
    for path in (train_path, test_path, summary_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    train.to_parquet(train_path, index=False)
    test.to_parquet(test_path, index=False)
    Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")


def read_split(path) -> tuple[pd.DataFrame, pd.Series | None]:
    """Features and labels (None when unsupervised) of a train/test parquet."""
    import pandas as pd

    frame = pd.read_parquet(path)
    if TARGET in frame.columns:
        return frame.drop(columns=[TARGET]), frame[TARGET]
    return frame, None
