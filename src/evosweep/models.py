"""A search model as one typed value: what the search and the evolution stages share.

`Model.from_config` parses a `search.models` entry once; strategies, the evolution's
objectives and the outputs receive the value and ask it for the estimator, the folds, the
scorers and the test scores, so a model is fitted and scored the same way whichever stage asks.
What crosses processes is `to_config()`'s plain entry, parsed again on arrival.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evosweep import preprocess, tasks
from evosweep.errors import ConfigError


@dataclass(frozen=True)
class Model:
    """One `search.models` entry. `evolution`: the GA settings of the evolutionary strategy;
    `preprocess`: the steps fitted before the estimator in every fold (None: the bare
    estimator); `dataset` is None and `space` empty for a model scored at fixed params only.
    `params` and `space` name the estimator's parameters and the `preprocess.*` steps."""

    name: str
    dataset: str | None
    estimator: str  # dotted import path of the estimator class
    params: Mapping[str, Any]
    space: Mapping[str, Any]
    strategy: str
    n_iter: int
    cv: int
    scoring: str
    evolution: Mapping[str, Any]
    eta: int  # asha: a rung keeps its best 1/eta on eta times the samples
    min_resources: int | str  # asha: samples of the first rung, or "smallest"
    preprocess: Mapping[str, Any] | None = None

    @classmethod
    def from_config(cls, name: str, entry: Mapping[str, Any]) -> Model:
        """The entry as the config holds it, or the part of it a caller needs (missing keys
        take the schema's defaults; no scoring: the estimator's task's usual one)."""
        from evosweep.config import model_defaults

        defaults = model_defaults()
        filled = {**defaults, "dataset": None, "space": {}, "preprocess": None, **entry}
        filled["evolution"] = {**defaults["evolution"], **entry.get("evolution", {})}
        model = cls(name=name, **filled)
        if model.scoring is None:
            task = tasks.estimator_task(model._bare_estimator())
            model = dataclasses.replace(model, scoring=tasks.default_scoring(task))
        return model

    def to_config(self) -> dict:
        """The plain entry (JSON-able), as `from_config` reads it."""
        entry = dataclasses.asdict(self)
        del entry["name"]
        return entry

    def with_params(self, params: Mapping[str, Any] | None) -> Model:
        """This model with `params` laid over its fixed params."""
        return dataclasses.replace(self, params={**self.params, **(params or {})})

    def where(self, key: str) -> str:
        """The key path of one of this model's settings, for error messages."""
        return f"search.models.{self.name}.{key}"

    @property
    def task(self) -> str:
        """classification, regression or clustering: the task of the model's scoring (which
        `check` makes the estimator's)."""
        return tasks.scoring_task(self.scoring)

    @property
    def is_clusterer(self) -> bool:
        return self.task == "clustering"

    @property
    def refit_metric(self) -> str:
        """The cv_results_ column suffix of the score a search ranks by."""
        return "silhouette" if self.is_clusterer else "score"

    def preprocessing(self) -> preprocess.Preprocess | None:
        """The `preprocess` key and `preprocess.*` space keys, checked (None: bare estimator)."""
        return preprocess.parse(self.preprocess, dict(self.space), f"search.models.{self.name}")

    def estimator_class(self) -> type:
        """Import the dotted `estimator` path; a ConfigError if it is not an estimator."""
        module_name, _, class_name = self.estimator.rpartition(".")
        where = self.where("estimator")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ConfigError(
                where, f"cannot import module {module_name!r} of {self.estimator!r} ({error})"
            ) from None
        cls = getattr(module, class_name, None)
        if cls is None:
            raise ConfigError(where, f"module {module_name!r} has no {class_name!r}")
        if not (isinstance(cls, type) and hasattr(cls, "get_params") and hasattr(cls, "fit")):
            raise ConfigError(where, f"{self.estimator!r} is not a scikit-learn estimator")
        return cls

    def build(self, seed: int | None = None, params: Mapping[str, Any] | None = None):
        """The estimator with its fixed params (updated by `params`), inside the pipeline of
        its `preprocess` steps when it has any (`evosweep.pipeline`: it also takes the
        config's parameter names). Unknown params are a ConfigError. A `random_state` the
        user did not fix is set to `seed`, so fits are reproducible whatever process runs
        them."""
        from evosweep import pipeline

        own, steps = preprocess.split_space({**self.params, **(params or {})})
        # Steps set by `params` alone (a search's best params) still need the pipeline.
        pre = self.preprocessing() or (preprocess.Preprocess() if steps else None)
        model = pipeline.build(pre, self._bare_estimator(seed, own))
        return model.set_params(**steps) if steps else model

    def _bare_estimator(self, seed: int | None = None, arguments: Mapping | None = None):
        cls = self.estimator_class()
        valid = self._parameter_names(cls)
        arguments = dict(preprocess.split_space(self.params)[0] if arguments is None else arguments)
        if seed is not None and "random_state" in valid and "random_state" not in self.params:
            arguments["random_state"] = seed
        try:
            return cls(**arguments)
        except Exception as error:  # noqa: BLE001 - any constructor failure is the config's fault
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError(
                self.where("params"), f"{self.estimator}(**params) failed: {first_line}"
            ) from None

    def _parameter_names(self, cls: type) -> set[str]:
        """The estimator's parameters; a ConfigError names the first param or space key that
        is neither one of them nor a `preprocess.*` step."""
        try:
            valid = set(cls().get_params())
        except TypeError as error:
            raise ConfigError(
                self.where("estimator"),
                f"{self.estimator!r} cannot be built without arguments ({error})",
            ) from None
        for given, label in ((self.params, "params"), (self.space, "space")):
            unknown = sorted(set(preprocess.split_space(dict(given))[0]) - valid)
            if unknown:
                raise ConfigError(
                    f"{self.where(label)}.{unknown[0]}",
                    f"{self.estimator} has no parameter {unknown[0]!r}; "
                    f"valid: {', '.join(sorted(valid))}",
                )
        return valid

    def folds(self, seed: int, n_splits: int | None = None):
        """Shuffled, seeded folds of the model's task (stratified for classifiers)."""
        return tasks.folds(self.task, n_splits or self.cv, seed)

    def scorers(self):
        """(scoring argument of a scikit-learn search, its refit argument)."""
        if self.is_clusterer:
            return {
                "silhouette": tasks.silhouette_scorer,
                "neg_inertia": tasks.neg_inertia_scorer,
            }, "silhouette"
        return self.scoring, True

    def check(self, profile=None) -> None:
        """Everything of the model that can be checked before any fit: the estimator's import
        and params, the space's names, the preprocess steps, the scoring against the
        estimator; with its dataset's `data.Profile`, the estimator and scoring against the
        dataset's task and the steps against its columns (text columns, gaps)."""
        estimator = self._bare_estimator()
        pre = self.preprocessing()
        dataset_task = profile.task if profile else tasks.estimator_task(estimator)
        where = f"search.models.{self.name}"
        tasks.check_model(estimator, self.scoring, self.dataset, dataset_task, where)
        if profile is not None:
            preprocess.check(pre, profile.columns, preprocess.accepts_nan(estimator), where)

    def test_scores(self, fitted, features, labels) -> dict:
        """Scores of the fitted model on the held-out test set, per task (tasks.test_scores)."""
        return tasks.test_scores(self.task, fitted, self.scoring, features, labels)

    def test_score(self, scores: dict) -> float:
        """The test score the leaderboard shows: the model's own scoring."""
        return tasks.test_score(self.scoring, scores)
