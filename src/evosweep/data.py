"""Data stage: load a dataset, validate it, split it reproducibly, summarise it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from evosweep.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

# numpy, pandas and scikit-learn are imported where used: the Snakefile imports this module to
# check user files, and a no-op `snakemake -n` should not pay for scikit-learn.

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
    """Check features and labels; return the frame ready to split (encoded if asked)."""
    import numpy as np
    import pandas as pd

    features = frame.drop(columns=[TARGET], errors="ignore")
    where = f"datasets.{name}"
    if features.shape[1] == 0:
        raise DataError(f"data error at {where}: no feature columns besides the target")
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        if spec["categorical"] != "onehot":
            cols = ", ".join(map(repr, non_numeric[:10]))
            raise DataError(
                f"data error at {where}: non-numeric feature column(s) {cols}; encode them first "
                f"or set datasets.{name}.categorical: onehot"
            )
        features = pd.get_dummies(features, columns=non_numeric, dtype=float)
    # Missing and infinite values get the same one-line error: count, columns, rows.
    for bad, what, fix in (
        (features.isna(), "missing", "fill or drop them"),
        (features.isin([np.inf, -np.inf]), "infinite (inf/-inf)", "replace or drop them"),
    ):
        if not bad.values.any():
            continue
        count = int(bad.values.sum())
        places = []
        for column in bad.columns[bad.any()]:
            rows = np.flatnonzero(bad[column].to_numpy())
            shown = ", ".join(str(r + 1) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            places.append(f"column {column!r} row(s) {shown}")
        raise DataError(
            f"data error at {where}: {count} {what} value(s) in features: "
            f"{'; '.join(places[:5])} (rows count from 1 after the header); {fix}"
        )
    features.columns = [str(c) for c in features.columns]
    if TARGET in frame.columns:
        labels = frame[TARGET]
        if labels.isna().any():
            rows = np.flatnonzero(labels.isna().to_numpy())[:5] + 1
            raise DataError(
                f"data error at {where}.target: {int(labels.isna().sum())} missing label(s), "
                f"row(s) {', '.join(map(str, rows))}; fill or drop them"
            )
        if labels.nunique() < 2:
            raise DataError(
                f"data error at {where}.target: a single class ({labels.iloc[0]!r}); "
                f"classification needs at least 2 classes"
            )
        features[TARGET] = labels.to_numpy()
    return features


def split(name: str, spec: dict, frame: pd.DataFrame, seed: int):
    """Reproducible train/test split, stratified by label when asked and possible."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if spec["stratify"] and TARGET in frame.columns:
        counts = frame[TARGET].value_counts()
        if counts.min() < 2:
            raise DataError(
                f"data error at datasets.{name}.stratify: class {counts.idxmin()!r} has a single "
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


def prepare(name: str, spec: dict, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Load, validate and split; return (train, test, summary)."""
    frame, digest = load(name, spec, seed)
    frame = validate(name, spec, frame)
    train, test = split(name, spec, frame, seed)
    summary = {
        "dataset": name,
        "source": spec["source"],
        "source_sha256": digest,
        "rows": int(len(frame)),
        "features": int(frame.shape[1] - (TARGET in frame.columns)),
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        "test_size": spec["test_size"],
        "seed": seed,
        "supervised": TARGET in frame.columns,
    }
    if TARGET in frame.columns:
        counts = frame[TARGET].value_counts().sort_index()
        summary["classes"] = int(len(counts))
        summary["class_counts"] = {str(k): int(v) for k, v in counts.items()}
    return train, test, summary


def preflight(datasets: dict, seed: int) -> None:
    """Validate user files (csv/parquet) before any job runs; built-in sources cannot be bad."""
    for name, spec in datasets.items():
        if source_path(spec) is not None:
            frame, _ = load(name, spec, seed)
            frame = validate(name, spec, frame)
            split(name, spec, frame, seed)


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
