"""The model-based and asynchronous strategies' search objects, without engines: ProposalSearchCV
(tpe, cmaes), the asha strategy's candidates, resources and outputs, the history plot."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.svm import SVC

from evosweep.errors import ConfigError
from evosweep.models import Model
from evosweep.search import plots
from evosweep.search.asha_search import AshaSearch
from evosweep.search.proposal_search import ORDER_COLUMN, ProposalSearchCV
from evosweep.search.strategies import STRATEGIES, asha, strategy_named
from helpers.configs import svc_iris

SPACE = {"C": {"logspace": [-2, 3, 12]}, "gamma": {"logspace": [-4, 1, 12]}}


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def fitted(iris, sampler="tpe", seed=3, n_iter=10, batch_size=2):
    search = ProposalSearchCV(
        SVC(), SPACE, sampler=sampler, n_iter=n_iter, random_state=seed, batch_size=batch_size, cv=3
    )
    return search.fit(*iris)


@pytest.mark.parametrize("sampler", ["tpe", "cmaes"])
def test_proposal_search_fits_n_iter_distinct_candidates_in_proposal_order(iris, sampler):
    search = fitted(iris, sampler)
    results = search.cv_results_
    assert list(results[ORDER_COLUMN]) == list(range(10))
    pairs = {(p["C"], p["gamma"]) for p in results["params"]}
    assert len(pairs) == 10  # never the same candidate twice
    assert search.best_score_ == max(results["mean_test_score"])
    assert search.best_estimator_.C == search.best_params_["C"]
    assert len(search.history_) == 10 and search.history_ == sorted(search.history_)


def test_proposal_search_is_deterministic_per_seed_and_batch(iris):
    first, again = fitted(iris), fitted(iris)
    assert first.cv_results_["params"] == again.cv_results_["params"]
    other_seed = fitted(iris, seed=4)
    assert first.cv_results_["params"] != other_seed.cv_results_["params"]


def test_proposal_search_stops_when_a_finite_space_is_exhausted(iris):
    search = ProposalSearchCV(
        SVC(), {"C": [0.1, 1.0, 10.0]}, n_iter=8, random_state=0, batch_size=2, cv=3
    ).fit(*iris)
    assert sorted(p["C"] for p in search.cv_results_["params"]) == [0.1, 1.0, 10.0]


def test_proposal_search_rejects_an_unknown_sampler(iris):
    with pytest.raises(ValueError, match="sampler"):
        ProposalSearchCV(SVC(), SPACE, sampler="smac").fit(*iris)


def test_new_strategies_are_registered_and_check_their_models():
    assert {"tpe", "cmaes", "asha"} <= set(STRATEGIES)
    model = Model.from_config("m", svc_iris(strategy="tpe", space={"C": {"logspace": [1]}}))
    with pytest.raises(ConfigError, match=r"search\.models\.m\.space"):
        strategy_named("tpe").check(model)
    clusterer = Model.from_config(
        "k",
        {
            "dataset": "blobs",
            "estimator": "sklearn.cluster.KMeans",
            "space": {"n_clusters": [2, 3]},
            "scoring": "silhouette",
            "strategy": "asha",
        },
    )
    with pytest.raises(ConfigError, match=r"search\.models\.k\.strategy: asha supports one"):
        strategy_named("asha").check(clusterer)


def test_asha_takes_halvings_candidates_and_subsamples(iris):
    """Same candidates and same rung folds as HalvingRandomSearchCV for a seed."""
    from sklearn.model_selection import ParameterSampler
    from sklearn.model_selection._search_successive_halving import _SubsampleMetaSplitter

    features, labels = iris
    model = Model.from_config("m", svc_iris(strategy="asha", n_iter=9))
    search = asha.make_search(model, 7, features, labels)
    space = {"C": [0.1, 1.0, 10.0], "gamma": [0.01, 1.0]}
    assert search.candidates == list(ParameterSampler(space, 9, random_state=7))
    assert search.min_resources == 2 * 3 * 3  # 2 x folds x classes, as halving's "smallest"
    splitter = _SubsampleMetaSplitter(
        base_cv=model.folds(7), fraction=54 / 150, subsample_test=True, random_state=7
    )
    expected = list(splitter.split(features, labels))
    for (train, test), (want_train, want_test) in zip(
        search.subsampled_folds(54, 150), expected, strict=True
    ):
        assert np.array_equal(train, want_train) and np.array_equal(test, want_test)


def test_asha_min_resources_and_eta_come_from_the_model(iris):
    features, labels = iris
    model = Model.from_config("m", svc_iris(strategy="asha", eta=2, min_resources=40))
    search = asha.make_search(model, 0, features, labels)
    assert (search.min_resources, search.eta) == (40, 2)
    assert isinstance(search, AshaSearch)


def test_history_is_the_best_so_far_of_the_highest_rung(tmp_path):
    model = Model.from_config("m", svc_iris(strategy="asha"))
    frame = pd.DataFrame(
        {
            "iter": [0, 0, 1, 0, 1],
            "mean_test_score": [0.5, 0.9, 0.7, 0.95, 0.8],
            "mean_fit_time": [0.1] * 5,
            "mean_score_time": [0.0] * 5,
        }
    )

    class Outcome:
        cv_results, history, workers = frame, [1.0, 2.0, 3.0, 2.5, 4.0], 2

    history = plots.history_frame(Outcome, model)
    # In time order: 0.5, 0.9, 0.95 (rung 0), then rung 1 restarts the best: 0.7, 0.8.
    assert list(history["best"]) == [0.5, 0.9, 0.95, 0.7, 0.8]
    assert list(history["seconds"]) == [1.0, 2.0, 2.5, 3.0, 4.0]
    plots.plot_history(Outcome, model, tmp_path / "history.png")
    assert (tmp_path / "history.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("eta", 1, "eta: 1 is out of range; expected a value >= 2"),
        ("eta", 2.5, "eta: expected integer, got 2.5"),
        ("min_resources", 0, "min_resources: 0 is not valid; expected an integer >= 1"),
        ("min_resources", "largest", "min_resources: 'largest' is not valid; expected an"),
    ],
)
def test_bad_asha_keys_are_one_line_config_errors(key, value, message):
    from evosweep.config import validate

    config = {
        "datasets": {"iris": {"source": "sklearn:iris"}},
        "search": {"models": {"m": svc_iris(strategy="asha", **{key: value})}},
    }
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert f"search.models.m.{message}" in str(error.value)
    assert "\n" not in str(error.value)


def test_more_min_resources_than_samples_is_a_config_error(iris):
    features, labels = iris
    model = Model.from_config("m", svc_iris(strategy="asha", min_resources=151))
    with pytest.raises(ConfigError, match=r"m\.min_resources: 151 samples is more than the 150"):
        asha.make_search(model, 0, features, labels)


def test_a_halving_outcome_counts_each_candidate_once(iris):
    """Halving lists a candidate once per round; the leaderboard's n_candidates counts it once."""
    from evosweep.search.fitting import search_cv_outcome
    from evosweep.search.strategies import halving

    features, labels = iris
    model = Model.from_config("m", svc_iris(strategy="halving", n_iter=6))
    search = halving.Halving().make_search(model, 0).fit(features, labels)
    outcome = search_cv_outcome(search, "score", n_fits=0, wall=0.0, workers=1)
    assert len(outcome.cv_results) > 6 and outcome.n_candidates == 6
