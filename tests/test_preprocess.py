"""Preprocessing inside every fold: the pipeline a model's `preprocess` key builds, the checks
against the table, the translation of space names, and the exact no-leakage proof."""

import hashlib
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, RobustScaler, StandardScaler
from sklearn.svm import SVC

from evosweep import pipeline, preprocess
from evosweep.errors import ConfigError
from helpers.workflow_runner import REPO

PENGUINS = REPO / "tests" / "data" / "penguins.csv"
WHERE = "search.models.m"


def penguins(target="species"):
    frame = pd.read_csv(PENGUINS).dropna(subset=[target])
    return frame.drop(columns=[target]).reset_index(drop=True), frame[target].reset_index(drop=True)


def parsed(given, space=None):
    return preprocess.parse(given, space or {"C": [1.0]}, WHERE)


def test_a_model_without_preprocess_is_its_bare_estimator():
    assert parsed(None) is None
    estimator = SVC()
    assert pipeline.build(None, estimator) is estimator


def test_the_pipeline_has_the_documented_steps():
    pre = parsed({"impute": "median", "scale": "standard", "categorical": "onehot"})
    model = pipeline.build(pre, SVC(C=3.0))
    params = model.get_params()
    assert [name for name, _ in model.steps] == ["preprocess", "model"]
    assert params["model__C"] == 3.0
    assert params["preprocess__numeric__impute"].strategy == "median"
    assert isinstance(params["preprocess__numeric__scale"], StandardScaler)
    assert isinstance(params["preprocess__text__encode"], OneHotEncoder)
    assert params["preprocess__text__impute"].fill_value == "missing"
    # Columns are taken by dtype when the pipeline is fitted: a bool column is numeric.
    table = pd.DataFrame({"x": [1.0, 2.0], "colour": ["red", None], "y": [True, False]})
    fitted = model["preprocess"].fit(table)
    chosen = {name: list(cols) for name, _, cols in fitted.transformers_ if name != "remainder"}
    assert chosen == {"numeric": ["x", "y"], "text": ["colour"]}
    bare = pipeline.build(parsed({}), SVC()).get_params()
    assert (
        bare["preprocess__numeric__impute"] == bare["preprocess__numeric__scale"] == "passthrough"
    )


@pytest.mark.parametrize(
    ("given", "space", "expected"),
    [
        ({"scale": "zscore"}, {}, f"{WHERE}.preprocess.scale: 'zscore' is not one of standard"),
        ({"scaler": "standard"}, {}, f"{WHERE}.preprocess.scaler: unknown step; steps are impute"),
        (
            None,
            {"preprocess.impute": ["mean", "avg"]},
            f"{WHERE}.space.preprocess.impute: 'avg' is not one of mean, median, most_frequent, null",
        ),
        (
            None,
            {"preprocess.scale": {"logspace": [0, 1, 2]}},
            f"{WHERE}.space.preprocess.scale: expected a list of values from standard, robust",
        ),
        (None, {"preprocess.encode": ["onehot"]}, f"{WHERE}.space.preprocess.encode: unknown step"),
    ],
)
def test_unknown_steps_and_values_are_one_line_errors(given, space, expected):
    with pytest.raises(ConfigError) as raised:
        preprocess.parse(given, space, WHERE)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_space_steps_are_searched_values():
    pre = parsed({"scale": "standard"}, {"C": [1.0], "preprocess.scale": ["robust", None]})
    assert pre.candidates("scale") == ("robust", None)
    assert pre.candidates("impute") == (None,)
    own, steps = preprocess.split_space({"C": [1.0], "preprocess.scale": ["robust"]})
    assert own == {"C": [1.0]} and steps == {"preprocess.scale": ["robust"]}


GAPS = preprocess.Columns(("x", "y"), ("colour",), {"x": 3, "colour": 2})


@pytest.mark.parametrize(
    ("pre", "columns", "nan_ok", "expected"),
    [
        (
            None,
            GAPS,
            False,
            f"config error at {WHERE}.preprocess.categorical: text column(s) 'colour' need an "
            f"encoder: set preprocess.categorical: onehot or ordinal",
        ),
        (
            parsed({"categorical": "onehot"}),
            GAPS,
            False,
            f"config error at {WHERE}.preprocess.impute: 3 missing value(s) in column(s) 'x' (3) "
            f"and this estimator does not accept them: set preprocess.impute: mean, median",
        ),
        (
            parsed(
                {"categorical": "onehot", "impute": "mean"}, {"preprocess.impute": ["mean", None]}
            ),
            GAPS,
            False,
            f"config error at {WHERE}.space.preprocess.impute: 3 missing value(s)",
        ),
        (
            parsed({"impute": "mean"}, {"preprocess.categorical": ["onehot", None]}),
            GAPS,
            False,
            f"config error at {WHERE}.space.preprocess.categorical: text column(s) 'colour'",
        ),
    ],
)
def test_a_model_that_cannot_take_the_table_is_a_config_error(pre, columns, nan_ok, expected):
    with pytest.raises(ConfigError) as raised:
        preprocess.check(pre, columns, nan_ok, WHERE)
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)


def test_models_that_can_take_the_table_pass():
    preprocess.check(parsed({"impute": "median", "categorical": "ordinal"}), GAPS, False, WHERE)
    numeric_gaps = preprocess.Columns(("x",), (), {"x": 3})
    nan_ok = preprocess.accepts_nan(HistGradientBoostingClassifier())
    assert nan_ok and not preprocess.accepts_nan(SVC())
    preprocess.check(None, numeric_gaps, nan_ok, WHERE)
    # a gap in a text column only needs the encoder: it becomes its own category
    preprocess.check(
        parsed({"categorical": "onehot"}), preprocess.Columns((), ("c",), {"c": 4}), False, WHERE
    )


def test_columns_are_read_from_the_table_and_the_summary():
    features, _ = penguins()
    columns = preprocess.Columns.of(features)
    assert columns.numeric == (
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "year",
    )
    assert columns.text == ("island", "sex")
    assert columns.missing == {
        "bill_length_mm": 2,
        "bill_depth_mm": 2,
        "flipper_length_mm": 2,
        "body_mass_g": 2,
        "sex": 11,
    }
    assert preprocess.Columns.from_summary(columns.summary()) == columns
    assert columns.subset(["sex", "year"]) == preprocess.Columns(("year",), ("sex",), {"sex": 11})


def test_the_pipeline_takes_the_configs_names():
    pre = parsed({"impute": "median"}, {"preprocess.scale": ["standard", "robust", None]})
    params = {"C": 2.0, "preprocess.scale": "robust", "preprocess.impute": "mean"}
    translated = pipeline.pipeline_params(params)
    assert translated["model__C"] == 2.0
    assert translated["preprocess__numeric__impute"].strategy == "mean"
    assert isinstance(translated["preprocess__numeric__scale"], RobustScaler)
    model = pipeline.build(pre, SVC()).set_params(**params)
    assert model.get_params()["model__C"] == 2.0
    assert isinstance(model.get_params()["preprocess__numeric__scale"], RobustScaler)
    # the pipeline's own names still work, and no step is "passthrough"
    model.set_params(model__gamma=0.5, **{"preprocess.scale": None})
    assert model.get_params()["model__gamma"] == 0.5
    assert model.get_params()["preprocess__numeric__scale"] == "passthrough"


def test_cv_results_show_the_users_names_and_values():
    from evosweep.search.outputs import cv_results_frame, shown_params

    features, labels = penguins()
    space = {"C": [1.0], "preprocess.scale": ["standard", None], "preprocess.impute": ["mean"]}
    pre = parsed({"impute": "median", "categorical": "onehot"}, space)
    search = GridSearchCV(pipeline.build(pre, SVC()), space, cv=3)
    search.fit(features, labels)
    frame = shown_params(cv_results_frame(search.cv_results_))
    assert [c for c in frame.columns if c.startswith("param_")] == [
        "param_C",
        "param_preprocess.impute",
        "param_preprocess.scale",
    ]
    assert list(frame["param_preprocess.scale"]) == ["standard", "null"]
    assert list(frame["param_preprocess.impute"]) == ["mean", "mean"]
    assert search.cv_results_["params"][0] == {
        "C": 1.0,
        "preprocess.impute": "mean",
        "preprocess.scale": "standard",
    }
    assert search.best_params_["preprocess.scale"] == "standard"  # grams next to mm
    portable = pipeline.portable(search.best_estimator_)
    assert type(portable) is Pipeline
    assert list(portable.predict(features)) == list(search.best_estimator_.predict(features))


def test_the_pipeline_predicts_raw_rows_with_gaps_and_unseen_categories():
    features, labels = penguins()
    pre = parsed({"impute": "median", "scale": "standard", "categorical": "onehot"})
    model = pipeline.build(pre, SVC()).fit(features, labels)
    raw = features.iloc[[3, 8]].copy()  # row 3 has no measurements and no sex
    assert raw.isna().any(axis=None)
    raw.loc[raw.index[1], "island"] = "Atlantis"
    assert set(model.predict(raw)) <= set(labels)
    encoder = model.named_steps["preprocess"].named_transformers_["text"]["encode"]
    assert "missing" in list(encoder.categories_[1])  # sex gaps are their own category


def test_pipelines_and_their_parameters_pickle_identically_in_every_process():
    """The fit journal keys each fit by pickling its estimator and parameters."""
    code = (
        "import pickle, hashlib, pandas as pd\n"
        "from sklearn.svm import SVC\n"
        "from evosweep import pipeline, preprocess as p\n"
        "pre = p.parse({'impute': 'median', 'categorical': 'onehot'}, "
        "{'C': [1.0], 'preprocess.scale': ['standard', None]}, 'w')\n"
        "model = pipeline.build(pre, SVC())\n"
        "space = {'C': [1.0], 'preprocess.scale': ['standard', None]}\n"
        "print(hashlib.sha256(pickle.dumps((model, space), protocol=5)).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    pre = parsed(
        {"impute": "median", "categorical": "onehot"}, {"preprocess.scale": ["standard", None]}
    )
    model = pipeline.build(pre, SVC())
    space = {"C": [1.0], "preprocess.scale": ["standard", None]}
    here = hashlib.sha256(pickle.dumps((model, space), protocol=5)).hexdigest()
    assert digests == {here}


def hand_built_pipeline(numeric, text):
    """The same model written by hand, as every scikit-learn user would."""
    return Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        (
                            "num",
                            Pipeline(
                                [
                                    ("imp", SimpleImputer(strategy="median")),
                                    ("sc", StandardScaler()),
                                ]
                            ),
                            numeric,
                        ),
                        (
                            "txt",
                            Pipeline(
                                [
                                    (
                                        "imp",
                                        SimpleImputer(strategy="constant", fill_value="missing"),
                                    ),
                                    (
                                        "enc",
                                        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                    ),
                                ]
                            ),
                            text,
                        ),
                    ]
                ),
            ),
            ("svc", SVC()),
        ]
    )


def test_grid_search_equals_a_hand_built_pipeline_on_the_same_folds():
    features, labels = penguins()
    columns = preprocess.Columns.of(features)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=3).split(features, labels))
    space = {"C": [0.1, 1.0, 10.0], "preprocess.scale": ["standard", None]}
    pre = parsed({"impute": "median", "categorical": "onehot"}, space)
    ours = GridSearchCV(pipeline.build(pre, SVC()), space, cv=folds).fit(features, labels)
    theirs = GridSearchCV(
        hand_built_pipeline(list(columns.numeric), list(columns.text)),
        {"svc__C": [0.1, 1.0, 10.0], "columns__num__sc": [StandardScaler(), "passthrough"]},
        cv=folds,
    ).fit(features, labels)
    ours_by_params = {
        (p["C"], p["preprocess.scale"]): s
        for p, s in zip(
            ours.cv_results_["params"],
            ours.cv_results_["mean_test_score"],
            strict=True,
        )
    }
    theirs_by_params = {
        (p["svc__C"], "standard" if p["columns__num__sc"] != "passthrough" else None): s
        for p, s in zip(
            theirs.cv_results_["params"], theirs.cv_results_["mean_test_score"], strict=True
        )
    }
    assert ours_by_params.keys() == theirs_by_params.keys()
    for key, score in ours_by_params.items():
        assert abs(score - theirs_by_params[key]) <= 1e-12
    # Scaling matters on raw penguins: grams next to millimetres.
    assert ours_by_params[(1.0, "standard")] > ours_by_params[(1.0, None)] + 0.1


def leaky_data():
    """A regression whose feature has many gaps: its mean differs between folds."""
    rng = np.random.default_rng(11)
    x = rng.gamma(2.0, 3.0, size=120)
    y = 2.0 * x + rng.normal(scale=1.0, size=120)
    x[rng.random(120) < 0.3] = np.nan
    return pd.DataFrame({"x": x, "z": rng.normal(size=120)}), pd.Series(y)


def test_the_imputer_is_fitted_inside_each_fold_only():
    """cross_validate of our pipeline equals fitting imputer, scaler and model on each fold's
    training rows by hand (to 1e-12), and differs from imputing with the whole training set's
    mean first: that leak would change the scores."""
    features, labels = leaky_data()
    folds = list(KFold(4, shuffle=True, random_state=0).split(features))
    pre = parsed({"impute": "mean", "scale": "standard"}, {"alpha": [1.0]})
    model = pipeline.build(pre, Ridge())
    ours = cross_validate(model, features, labels, cv=folds, scoring="r2")["test_score"]

    def fold_score(train, test, imputer):
        scaler = StandardScaler().fit(imputer.transform(features.iloc[train]))
        fitted = Ridge().fit(
            scaler.transform(imputer.transform(features.iloc[train])), labels.iloc[train]
        )
        predicted = fitted.predict(scaler.transform(imputer.transform(features.iloc[test])))
        return r2_score(labels.iloc[test], predicted)

    by_hand = [
        fold_score(tr, te, SimpleImputer(strategy="mean").fit(features.iloc[tr]))
        for tr, te in folds
    ]
    whole = SimpleImputer(strategy="mean").fit(features)
    leaky = [fold_score(tr, te, whole) for tr, te in folds]
    assert np.max(np.abs(ours - np.array(by_hand))) <= 1e-12
    assert np.max(np.abs(ours - np.array(leaky))) > 1e-6
