"""A search's training data goes to each engine once, not with every batch (engine_data)."""

import sys

import cloudpickle
import numpy as np
import pytest
from ipyparallel.error import RemoteError
from joblib import Parallel, delayed
from joblib.parallel import get_active_backend
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

from evosweep.engines import engine_cluster
from evosweep.engines.engine_data import PUSH_THRESHOLD_BYTES, SharedData
from helpers.engine_faults import EngineKiller, hang_if_victim

# Engines cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

GRID = {"min_samples_leaf": [1, 5, 20], "max_features": [0.3, 0.6]}


def _stored_shapes():
    from evosweep.engines import engine_data

    return sorted(np.shape(data) for data in engine_data._STORE.values())


def _search(features, labels, **options):
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), GRID, cv=5, **options)
    return search.fit(features, labels).cv_results_


@pytest.fixture
def batch_payloads(monkeypatch):
    """The pickled size of every batch SharedData prepares for the engines."""
    sizes = []
    prepare = SharedData.prepare

    def recording(self, batch):
        prepared = prepare(self, batch)
        sizes.append(len(prepared.payload))
        return prepared

    monkeypatch.setattr(SharedData, "prepare", recording)
    return sizes


def _assert_same_results(expected, found):
    assert list(found["params"]) == list(expected["params"])
    for name in expected:
        if name.startswith(("split", "mean_test", "rank_test")):
            np.testing.assert_array_equal(found[name], expected[name])


def test_a_search_sends_its_data_to_each_engine_once(batch_payloads):
    features, labels = make_classification(n_samples=1500, n_features=20, random_state=0)
    assert features.nbytes >= PUSH_THRESHOLD_BYTES > labels.nbytes
    expected = _search(features, labels)
    with engine_cluster(2, slurm=False) as engines:
        with engines.joblib_backend():
            shared = get_active_backend()[0].shared
            first = _search(features, labels, n_jobs=-1)
            # Replies on each engine's queue come in order: once this one is back, so are the
            # pushes, and every later batch carries the data's key only.
            held = engines.client[:].apply_sync(_stored_shapes)
            batch_payloads.clear()
            second = _search(features, labels, n_jobs=-1)
        dropped = engines.client[:].apply_sync(_stored_shapes)
    assert held == [[features.shape]] * 2
    assert (shared.pushes, shared.pushed_bytes) == (2, 2 * features.nbytes)
    assert len(batch_payloads) >= 2 and max(batch_payloads) < features.nbytes
    assert dropped == [[], []]
    _assert_same_results(expected, first)
    _assert_same_results(expected, second)


def test_small_data_and_the_switched_off_path_travel_with_the_batches(batch_payloads):
    features, labels = make_classification(n_samples=200, n_features=20, random_state=0)
    expected = _search(features, labels)
    with engine_cluster(1, slurm=False) as engines:
        with engines.joblib_backend():
            small = _search(features, labels, n_jobs=-1)
            assert get_active_backend()[0].shared.pushes == 0
        assert batch_payloads and min(batch_payloads) > features.nbytes
        with engines.joblib_backend(share_data=False):
            assert get_active_backend()[0].shared is None
            large = make_classification(n_samples=1500, n_features=20, random_state=0)
            switched_off = _search(*large, n_jobs=-1)
    _assert_same_results(expected, small)
    _assert_same_results(_search(*large), switched_off)


def _row_sum(data, row, victim, fifo):
    hang_if_victim(victim, fifo, f"row({row})")
    return float(data[row].sum())


def test_a_batch_whose_engine_dies_runs_on_another_with_the_stored_data(tmp_path):
    data = np.arange(PUSH_THRESHOLD_BYTES // 4, dtype=np.float64).reshape(-1, 8)
    with engine_cluster(2, slurm=False) as engines, engines.joblib_backend():
        Parallel(batch_size=1)(delayed(_row_sum)(data, row, 0, "") for row in range(4))
        assert engines.client[:].apply_sync(_stored_shapes) == [[data.shape]] * 2
        killer = EngineKiller(engines.engine_pids()[0], tmp_path)
        sums = Parallel(batch_size=1)(
            delayed(_row_sum)(data, row, killer.pid, killer.fifo) for row in range(24)
        )
        assert killer.join().startswith("row(")
        assert get_active_backend()[0].shared.pushes == 2
    assert sums == [float(data[row].sum()) for row in range(24)]


def test_stored_data_is_read_only_on_the_engines():
    data = np.zeros(PUSH_THRESHOLD_BYTES // 8)
    with engine_cluster(1, slurm=False) as engines, engines.joblib_backend():
        Parallel()(delayed(np.sum)(data) for _ in range(2))
        engines.client[:].apply_sync(_stored_shapes)  # the push is back
        with pytest.raises(RemoteError, match="read-only") as raised:
            Parallel()(delayed(np.copyto)(data, 1.0) for _ in range(2))
    assert raised.value.ename == "ValueError"
