"""A model's `preprocess` key and `preprocess.*` space keys: parsed, and checked against the
dataset's columns before any job.

    preprocess:
      impute: median        # numeric gaps: mean | median | most_frequent | null
      scale: standard       # numeric columns: standard | robust | minmax | null
      categorical: onehot   # text columns: onehot | ordinal | null

`evosweep.pipeline` builds the scikit-learn Pipeline these steps describe, fitted inside every CV
fold. A model without `preprocess` (and without `preprocess.*` in its space) is its bare
estimator: :func:`parse` returns None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evosweep.errors import ConfigError

SPACE_PREFIX = "preprocess."
CHOICES = {
    "impute": ("mean", "median", "most_frequent"),
    "scale": ("standard", "robust", "minmax"),
    "categorical": ("onehot", "ordinal"),
}


def _choices(key: str) -> str:
    return ", ".join((*CHOICES[key], "null"))


@dataclass(frozen=True)
class Preprocess:
    """A model's preprocessing: each step a name of CHOICES or None (no such step).
    `searched`: the steps its space varies, {key: (values, ...)}."""

    impute: str | None = None
    scale: str | None = None
    categorical: str | None = None
    searched: dict = field(default_factory=dict)

    def candidates(self, key: str) -> tuple:
        """Every value step `key` takes in this model's search."""
        return self.searched.get(key, (getattr(self, key),))


@dataclass(frozen=True)
class Columns:
    """A training table's feature columns by kind, and its gaps ({column: missing values})."""

    numeric: tuple[str, ...]
    text: tuple[str, ...]
    missing: dict = field(default_factory=dict)

    @classmethod
    def of(cls, features) -> Columns:
        """Numeric (bool included) and text columns of a feature frame, in its order."""
        import pandas as pd

        numeric = tuple(
            str(c) for c in features.columns if pd.api.types.is_numeric_dtype(features[c])
        )
        text = tuple(str(c) for c in features.columns if str(c) not in numeric)
        gaps = features.isna().sum()
        return cls(numeric, text, {str(c): int(n) for c, n in gaps.items() if n})

    def summary(self) -> dict:
        """The data summary's fields (see data.prepare); from_summary reads them back."""
        return {
            "numeric_columns": list(self.numeric),
            "text_columns": list(self.text),
            "missing_values": dict(self.missing),
        }

    @classmethod
    def from_summary(cls, summary: dict) -> Columns:
        return cls(
            tuple(summary["numeric_columns"]),
            tuple(summary["text_columns"]),
            dict(summary["missing_values"]),
        )

    def subset(self, names) -> Columns:
        """The columns among `names` (a feature subset), in this table's order."""
        keep = set(names)
        return Columns(
            tuple(c for c in self.numeric if c in keep),
            tuple(c for c in self.text if c in keep),
            {c: n for c, n in self.missing.items() if c in keep},
        )


def _check_value(key: str, value, where: str) -> None:
    if value is not None and value not in CHOICES[key]:
        raise ConfigError(where, f"{value!r} is not one of {_choices(key)}")


def split_space(space: dict) -> tuple[dict, dict]:
    """(the estimator's own dimensions, the `preprocess.*` dimensions) of a model's space."""
    own = {k: v for k, v in space.items() if not k.startswith(SPACE_PREFIX)}
    steps = {k: v for k, v in space.items() if k.startswith(SPACE_PREFIX)}
    return own, steps


def parse(given: dict | None, space: dict, where: str) -> Preprocess | None:
    """A model's `preprocess` key and `preprocess.*` space keys, checked; None when it has
    neither (the bare estimator). `where`: the model's key path, e.g. search.models.svc."""
    _, steps = split_space(space)
    if given is None and not steps:
        return None
    given = dict(given or {})
    for key in given:
        if key not in CHOICES:
            raise ConfigError(
                f"{where}.preprocess.{key}", f"unknown step; steps are {', '.join(CHOICES)}"
            )
    for key, value in given.items():
        _check_value(key, value, f"{where}.preprocess.{key}")
    searched = {}
    for name, values in steps.items():
        key = name.removeprefix(SPACE_PREFIX)
        here = f"{where}.space.{name}"
        if key not in CHOICES:
            steps_named = ", ".join(SPACE_PREFIX + k for k in CHOICES)
            raise ConfigError(here, f"unknown step; the space can name {steps_named}")
        if not isinstance(values, list) or not values:
            raise ConfigError(here, f"expected a list of values from {_choices(key)}")
        for value in values:
            _check_value(key, value, here)
        searched[key] = tuple(values)
    return Preprocess(**given, searched=searched)


def check(pre: Preprocess | None, columns: Columns, accepts_nan: bool, where: str) -> None:
    """Can every candidate of this model take the table's columns? Text columns need an
    encoder; gaps in numeric columns need an imputer unless the estimator accepts NaN
    (scikit-learn's allow_nan tag). A ConfigError at `where`.preprocess... otherwise."""
    pre = pre or Preprocess()
    if columns.text and None in pre.candidates("categorical"):
        cols = ", ".join(map(repr, columns.text[:5]))
        raise ConfigError(
            _step_where(pre, "categorical", where),
            f"text column(s) {cols} need an encoder: set preprocess.categorical: onehot or "
            f"ordinal (or the dataset's categorical: onehot)",
        )
    numeric_gaps = {c: n for c, n in columns.missing.items() if c in columns.numeric}
    if numeric_gaps and not accepts_nan and None in pre.candidates("impute"):
        shown = ", ".join(f"{c!r} ({n})" for c, n in list(numeric_gaps.items())[:5])
        raise ConfigError(
            _step_where(pre, "impute", where),
            f"{sum(numeric_gaps.values())} missing value(s) in column(s) {shown} and this "
            f"estimator does not accept them: set preprocess.impute: mean, median or "
            f"most_frequent (or fill them in the data)",
        )


def _step_where(pre: Preprocess, key: str, where: str) -> str:
    if key in pre.searched:
        return f"{where}.space.{SPACE_PREFIX}{key}"
    return f"{where}.preprocess.{key}"


def accepts_nan(estimator) -> bool:
    """Whether the estimator takes missing values itself (its allow_nan tag)."""
    from sklearn.utils import get_tags

    return bool(get_tags(estimator).input_tags.allow_nan)
