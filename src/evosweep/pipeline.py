"""A model's preprocessing as a scikit-learn Pipeline, fitted inside every CV fold.

    ConfigPipeline([("preprocess", ColumnTransformer([
                        ("numeric", Pipeline([("impute", SimpleImputer | passthrough),
                                              ("scale", StandardScaler | RobustScaler
                                                        | MinMaxScaler | passthrough)]),
                         numeric and bool columns),
                        ("text", Pipeline([("impute", SimpleImputer(constant "missing")),
                                           ("encode", OneHotEncoder | OrdinalEncoder)]),
                         the other columns)])),
                    ("model", estimator)])

Every step is fitted by the pipeline's own fit, so a search fits it on each fold's training part
only: nothing is learned from a validation fold or the test set. A gap in a text column becomes
its own category, "missing" (a missing sex or island is information, not noise).

`ConfigPipeline.set_params` also takes the config's names (`C`, `preprocess.scale: robust`), so
every strategy sets candidates as the space names them and cv_results_ / best_params_ keep those
names; `portable` turns the fitted model into a plain scikit-learn Pipeline for
best_model.joblib.
"""

from __future__ import annotations

import sklearn.preprocessing
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from evosweep.preprocess import SPACE_PREFIX, Preprocess

PREPROCESS_STEP, MODEL_STEP = "preprocess", "model"
MISSING_CATEGORY = "missing"
# The pipeline parameter behind each step key; its values are step objects or "passthrough".
STEP_PARAMS = {
    "impute": f"{PREPROCESS_STEP}__numeric__impute",
    "scale": f"{PREPROCESS_STEP}__numeric__scale",
    "categorical": f"{PREPROCESS_STEP}__text__encode",
}
# sklearn.preprocessing classes of the scale and categorical values.
STEP_CLASSES = {
    "standard": "StandardScaler",
    "robust": "RobustScaler",
    "minmax": "MinMaxScaler",
    "onehot": "OneHotEncoder",
    "ordinal": "OrdinalEncoder",
}
# Dense one-hot output: every estimator takes it. A category first seen in a validation fold or
# the test set is all zeros (ordinal: -1) instead of an error.
STEP_OPTIONS = {
    "onehot": {"handle_unknown": "ignore", "sparse_output": False},
    "ordinal": {"handle_unknown": "use_encoded_value", "unknown_value": -1},
}
# Columns by dtype, chosen when the pipeline is fitted: the same pipeline takes a whole table or
# a feature subset (NSGA-II feature selection).
NUMERIC_DTYPES = ["number", "bool"]
# The Pipeline's own parameters (steps, memory, ...), which set_params passes on as they are.
_PIPELINE_OWN = frozenset(Pipeline([("m", None)]).get_params(deep=False))


def step(key: str, value):
    """The pipeline step for one config value (None: "passthrough", no such step)."""
    if value is None:
        return "passthrough"
    if key == "impute":
        return SimpleImputer(strategy=value)
    return getattr(sklearn.preprocessing, STEP_CLASSES[value])(**STEP_OPTIONS.get(value, {}))


def pipeline_params(params: dict) -> dict:
    """Parameters in the config's names (`C`, `preprocess.scale: robust`) as the pipeline's
    (`model__C`, `preprocess__numeric__scale: RobustScaler()`); the pipeline's own names
    (`model__C`, `memory`) are kept."""
    translated = {}
    for name, value in params.items():
        if name.startswith(SPACE_PREFIX):
            key = name.removeprefix(SPACE_PREFIX)
            translated[STEP_PARAMS[key]] = step(key, value)
        elif "__" in name or name in _PIPELINE_OWN:
            translated[name] = value
        else:
            translated[f"{MODEL_STEP}__{name}"] = value
    return translated


class ConfigPipeline(Pipeline):
    """A scikit-learn Pipeline whose set_params also takes the config's names."""

    def set_params(self, **params):
        return super().set_params(**pipeline_params(params))


def build(pre: Preprocess | None, estimator):
    """The model to fit: the bare estimator (pre is None) or the whole pipeline."""
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
    # Both branches always exist (an empty selection is skipped), so the space's step names
    # are valid whatever columns a table or a feature subset has. n_jobs=1: the branches are
    # fitted where the pipeline is, never shipped as tasks of their own to the search's
    # engines (the refit runs under their joblib backend).
    transformer = ColumnTransformer(
        [
            ("numeric", numeric, make_column_selector(dtype_include=NUMERIC_DTYPES)),
            ("text", text, make_column_selector(dtype_exclude=NUMERIC_DTYPES)),
        ],
        n_jobs=1,
    )
    return ConfigPipeline([(PREPROCESS_STEP, transformer), (MODEL_STEP, estimator)])


def portable(model):
    """A fitted model as plain scikit-learn objects (a Pipeline of the same fitted steps), so
    best_model.joblib loads wherever scikit-learn does."""
    if isinstance(model, ConfigPipeline):
        return Pipeline(model.steps)
    return model
