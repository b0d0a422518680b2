"""Objectives: pure functions of a genome batch, rebuilt once per process from a small spec.

A spec is a JSON-able dict, so it pickles to SCOOP workers in a few bytes; the expensive part
(loading data, importing the estimator) happens once per worker process in `build`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np

from evosweep.models import Model


class Objective:
    """Evaluates a batch of genomes; results are tuples (fitness values..., extras...)."""

    weights: tuple[float, ...] = (-1.0,)
    names: tuple[str, ...] = ("fitness",)
    genome: str = "float"  # "float" (continuous), "bits" or "genes"
    size: int = 0

    def evaluate(self, genomes: list) -> list[tuple[float, ...]]:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Pay the first evaluation's one-off costs (lazy imports, first fit) now."""


class _Benchmark(Objective):
    """A benchmark function of real vectors: `value(x)` maps a (genomes, dimensions) array to
    one value per genome."""

    def __init__(self, dimensions: int):
        self.size = dimensions

    def evaluate(self, genomes):
        x = np.asarray(genomes, dtype=float).reshape(len(genomes), self.size)
        return [(float(v),) for v in self.value(x)]

    def value(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Rastrigin(_Benchmark):
    names = ("rastrigin",)

    def value(self, x):
        return 10.0 * self.size + np.sum(x * x - 10.0 * np.cos(2.0 * np.pi * x), axis=1)


class Sphere(_Benchmark):
    names = ("sphere",)

    def value(self, x):
        return np.sum(x * x, axis=1)


class _CrossValidated(Objective):
    """Scores a search model's candidates with the search stage's folds and scorer, whatever
    its task (a classifier or a regressor, bare or inside its preprocessing pipeline)."""

    def __init__(self, train: str, name: str, model: dict, cv: int, seed: int):
        from evosweep.data import read_split

        # The table as the search sees it: text columns and gaps go to the model's pipeline.
        self.X, self.y = read_split(train)
        self.feature_names = list(self.X.columns)
        self.model = Model.from_config(name, model)
        self.seed = seed
        self.folds = self.model.folds(seed, cv)

    def warm_up(self) -> None:
        self.cross_validate()

    def cross_validate(self, params: dict | None = None, columns=None) -> np.ndarray:
        from sklearn.model_selection import cross_val_score

        X = self.X if columns is None else self.X.iloc[:, columns]
        estimator = self.model.build(self.seed, params)
        return cross_val_score(estimator, X, self.y, cv=self.folds, scoring=self.model.scoring)


class FeatureSelection(_CrossValidated):
    """Maximise the CV score of fixed model parameters, minimise the number of features."""

    weights = (1.0, -1.0)
    names = ("score", "features")
    genome = "bits"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.size = self.X.shape[1]

    @functools.cached_property
    def featureless_score(self) -> float:
        from sklearn.base import is_regressor
        from sklearn.dummy import DummyClassifier, DummyRegressor
        from sklearn.model_selection import cross_val_score

        dummy = DummyRegressor() if is_regressor(self.model.build()) else DummyClassifier()
        scores = cross_val_score(dummy, self.X, self.y, cv=self.folds, scoring=self.model.scoring)
        return float(scores.mean())

    def evaluate(self, genomes):
        results = []
        for bits in genomes:
            columns = np.flatnonzero(np.asarray(bits, dtype=bool))
            if columns.size == 0:
                # No feature: the score of predicting without any (the mean, the most frequent
                # class) at the count of all features, so any subset that learns something
                # dominates it whatever the scorer's range (a neg_* score is below 0).
                results.append((self.featureless_score, float(self.size)))
                continue
            scores = self.cross_validate(columns=columns)
            results.append((float(scores.mean()), float(columns.size)))
        return results


class HyperParameters(_CrossValidated):
    """Maximise the mean CV score of decoded parameters; the fold std rides along after it."""

    weights = (1.0,)
    names = ("score",)
    genome = "genes"

    def __init__(self, **kwargs):
        from evosweep import space as search_space

        super().__init__(**kwargs)
        self.genes = search_space.genes(self.model.space)
        self.size = len(self.genes)

    def decode(self, genome) -> dict[str, Any]:
        from evosweep import space as search_space

        return search_space.decode(self.genes, genome)

    def evaluate(self, genomes):
        results = []
        for genome in genomes:
            scores = self.cross_validate(self.decode(genome))
            results.append((float(scores.mean()), float(scores.std())))
        return results


OBJECTIVES = {
    "rastrigin": Rastrigin,
    "sphere": Sphere,
    "feature_selection": FeatureSelection,
    "hyperparameters": HyperParameters,
}


def build(spec: dict) -> Objective:
    """`spec` = {"objective": NAME, **constructor arguments}; cached per process."""
    return _build_cached(json.dumps(spec, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _build_cached(spec_json: str) -> Objective:
    spec = json.loads(spec_json)
    name = spec.pop("objective")
    return OBJECTIVES[name](**spec)


def evaluate_chunk(spec: dict, genomes: list) -> tuple[list[tuple[float, ...]], float]:
    """Worker task: evaluate one chunk; return its results and the seconds it took."""
    import time

    start = time.perf_counter()
    results = build(spec).evaluate(genomes)
    return results, time.perf_counter() - start
