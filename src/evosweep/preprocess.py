"""Preprocessing inside every CV fold: a model's `preprocess` key as a scikit-learn Pipeline.

    Pipeline([("preprocess", ColumnTransformer([
                  ("numeric", Pipeline([("impute", SimpleImputer | passthrough),
                                        ("scale", StandardScaler | RobustScaler | MinMaxScaler
                                                  | passthrough)]), numeric columns),
                  ("text", Pipeline([("impute", SimpleImputer(constant "missing")),
                                     ("encode", OneHotEncoder | OrdinalEncoder)]), text columns)])),
              ("model", estimator)])

Every step is fitted by the pipeline's own fit, so a search fits it on each fold's training
part only: nothing is learned from a validation fold or the test set. A gap in a text column
becomes its own category, "missing" (a missing sex or island is information, not noise).

The space may name steps (`preprocess.scale: [standard, null]`) next to the estimator's
parameters; :func:`pipeline_space` / :func:`pipeline_params` translate the user's names into
the pipeline's (`model__C`, `preprocess__numeric__scale` with step objects) and
:func:`user_params` / :func:`user_cv_results` translate them back, so outputs show `C` and
`preprocess.scale` = `standard`. A model without `preprocess` (and without `preprocess.*` in
its space) is its bare estimator, and every function here leaves it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evosweep.errors import ConfigError

PREPROCESS_STEP, MODEL_STEP = "preprocess", "model"
SPACE_PREFIX = "preprocess."
MISSING_CATEGORY = "missing"
CHOICES = {
    "impute": ("mean", "median", "most_frequent"),
    "scale": ("standard", "robust", "minmax"),
    "categorical": ("onehot", "ordinal"),
}
# The pipeline parameter behind each step key; its values are step objects or "passthrough".
STEP_PARAMS = {
    "impute": f"{PREPROCESS_STEP}__numeric__impute",
    "scale": f"{PREPROCESS_STEP}__numeric__scale",
    "categorical": f"{PREPROCESS_STEP}__text__encode",
}
STEP_KEYS = {param: key for key, param in STEP_PARAMS.items()}
# scikit-learn.preprocessing classes of the scale and categorical values.
STEP_CLASSES = {
    "standard": "StandardScaler",
    "robust": "RobustScaler",
    "minmax": "MinMaxScaler",
    "onehot": "OneHotEncoder",
    "ordinal": "OrdinalEncoder",
}
STEP_NAMES = {cls: name for name, cls in STEP_CLASSES.items()}
# Dense one-hot output: every estimator takes it. A category first seen in a validation fold or
# the test set is all zeros (ordinal: -1) instead of an error.
STEP_OPTIONS = {
    "onehot": {"handle_unknown": "ignore", "sparse_output": False},
    "ordinal": {"handle_unknown": "use_encoded_value", "unknown_value": -1},
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


def step(key: str, value):
    """The pipeline step for one user value (None: "passthrough", no such step)."""
    import sklearn.preprocessing
    from sklearn.impute import SimpleImputer

    if value is None:
        return "passthrough"
    if key == "impute":
        return SimpleImputer(strategy=value)
    return getattr(sklearn.preprocessing, STEP_CLASSES[value])(**STEP_OPTIONS.get(value, {}))


def step_name(key: str, value) -> str | None:
    """The user value of a pipeline step (inverse of `step`)."""
    if isinstance(value, str):
        return None if value == "passthrough" else value
    if key == "impute":
        return value.strategy
    return STEP_NAMES[type(value).__name__]


def build(pre: Preprocess | None, estimator, columns: Columns):
    """The model to fit: the bare estimator (pre is None) or the whole pipeline."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    if pre is None:
        return estimator
    numeric = Pipeline(
        [("impute", step("impute", pre.impute)), ("scale", step("scale", pre.scale))]
    )
    text = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
            ("encode", step("categorical", pre.categorical)),
        ]
    )
    # Both branches always exist (an empty column list is skipped), so the space's step
    # names are valid whatever columns a table or a feature subset has.
    transformer = ColumnTransformer(
        [("numeric", numeric, list(columns.numeric)), ("text", text, list(columns.text))]
    )
    return Pipeline([(PREPROCESS_STEP, transformer), (MODEL_STEP, estimator)])


def _pipeline_name(name: str) -> str:
    if name.startswith(SPACE_PREFIX):
        return STEP_PARAMS[name.removeprefix(SPACE_PREFIX)]
    return f"{MODEL_STEP}__{name}"


def pipeline_space(pre: Preprocess | None, space: dict) -> dict:
    """A strategy's space (values: lists or distributions) in the pipeline's names; a step's
    values become step objects."""
    if pre is None:
        return dict(space)
    translated = {}
    for name, values in space.items():
        if name.startswith(SPACE_PREFIX):
            key = name.removeprefix(SPACE_PREFIX)
            values = [step(key, value) for value in values]
        translated[_pipeline_name(name)] = values
    return translated


def pipeline_params(pre: Preprocess | None, params: dict) -> dict:
    """One candidate's parameters (user names) as the pipeline's set_params arguments."""
    if pre is None:
        return dict(params)
    return {
        _pipeline_name(name): step(name.removeprefix(SPACE_PREFIX), value)
        if name.startswith(SPACE_PREFIX)
        else value
        for name, value in params.items()
    }


def _user_name(name: str) -> tuple[str, str | None]:
    """(user name, step key or None) of a pipeline parameter name."""
    if name in STEP_KEYS:
        return SPACE_PREFIX + STEP_KEYS[name], STEP_KEYS[name]
    return name.removeprefix(f"{MODEL_STEP}__"), None


def user_params(pre: Preprocess | None, params: dict) -> dict:
    """Pipeline parameters (e.g. a search's best_params_) in the user's names and values."""
    if pre is None:
        return dict(params)
    result = {}
    for name, value in params.items():
        user, key = _user_name(name)
        result[user] = step_name(key, value) if key else value
    return result


def user_cv_results(pre: Preprocess | None, results: dict) -> dict:
    """A search's cv_results_ with `param_<user name>` columns and user `params`; a step's
    values are its names, and no step is "null" (the config's spelling)."""
    import numpy as np

    if pre is None:
        return dict(results)
    translated = {}
    for column, values in results.items():
        if column == "params":
            translated[column] = [user_params(pre, p) for p in values]
        elif column.startswith("param_"):
            user, key = _user_name(column.removeprefix("param_"))
            if key:
                mask = np.ma.getmaskarray(values)
                names = [
                    None if hidden else step_name(key, value) or "null"
                    for value, hidden in zip(np.ma.getdata(values), mask, strict=True)
                ]
                values = np.ma.MaskedArray(names, mask=mask, dtype=object)
            translated[f"param_{user}"] = values
        else:
            translated[column] = values
    return translated
