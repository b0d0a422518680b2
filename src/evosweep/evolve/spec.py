"""What crosses into the SCOOP origin (RunSpec) and comes back (RunResult).

`build_run` is the one way to make a RunSpec, from an `evolve.problems`-shaped entry: the
rules, the evolutionary search strategy, bench/ and the tests all call it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evosweep.models import Model

# Problem keys that shape a run's results (so they are part of its checkpoint fingerprint).
ALGORITHM_KEYS = {
    "cma-es": ("generations", "centroid", "sigma", "lambda"),
    "ga": ("generations", "population", "crossover", "mutation", "gene_mutation", "tournament"),
    "nsga2": ("generations", "population", "crossover", "mutation", "gene_mutation"),
}
CONTINUOUS_OBJECTIVES = ("rastrigin", "sphere")


@dataclass(frozen=True)
class RunSpec:
    """One evolution run. `problem`: the algorithm's settings; `objective`: a JSON-able spec the
    workers rebuild the objective from; `inputs`: hashes of the files the objective reads."""

    name: str
    problem: dict
    objective: dict
    seed: int
    inputs: dict
    checkpoint: str
    workers: int

    def identity(self) -> dict:
        """What determines the results: checkpoints of any other identity are not reused."""
        return {
            "problem": self.problem,
            "objective": self.objective,
            "seed": self.seed,
            "inputs": self.inputs,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def read(cls, path: str | Path) -> RunSpec:
        return cls(**json.loads(Path(path).read_text()))


@dataclass
class RunResult:
    """The origin's answer: the logbook, the hall of fame and final population as
    (genome, fitness) pairs, every evaluated (genome, result) for searches, and counters."""

    logbook: list
    hall: list
    population: list
    evaluated: list
    objective_names: list
    weights: list
    evaluations: int
    cache_hits: int
    unique_evaluations: int
    wall_seconds: float
    workers: int = 1
    map: str = "serial"
    worker_tasks: int = 0
    extra: dict = field(default_factory=dict)

    def best(self) -> tuple[list, tuple]:
        """The hall-of-fame entry; on a Pareto front, the one with the best first objective."""
        return max(self.hall, key=lambda entry: entry[1][0] * self.weights[0])


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def problem_settings(problem: dict) -> dict:
    settings = {key: problem[key] for key in ALGORITHM_KEYS[problem["algorithm"]]}
    settings.update(
        algorithm=problem["algorithm"],
        checkpoint_every=problem["checkpoint_every"],
        chunksize=problem["chunksize"],
    )
    return settings


def objective_spec(problem: dict, seed: int, model: Model | None, train) -> dict:
    """The JSON-able spec the workers rebuild the objective from; the model crosses as its
    plain config entry (problems.build parses it again)."""
    if problem["objective"] in CONTINUOUS_OBJECTIVES:
        return {"objective": problem["objective"], "dimensions": problem["dimensions"]}
    return {
        "objective": problem["objective"],
        "train": str(train),
        "name": model.name,
        "model": model.to_config(),
        "cv": problem["cv"],
        "seed": seed,
    }


def build_run(
    name: str,
    problem: dict,
    seed: int,
    workers: int,
    checkpoint,
    *,
    model: Model | None = None,
    best_params: dict | None = None,
    train=None,
) -> RunSpec:
    """A run of `problem` (an `evolve.problems` entry, or the GA of an evolutionary search with
    objective `hyperparameters`). `model`: the search model scoring candidates; `best_params`
    are laid over its fixed params (feature selection scores the search's best model)."""
    if model is not None and best_params:
        model = model.with_params(best_params)
    return RunSpec(
        name=name,
        problem=problem_settings(problem),
        objective=objective_spec(problem, seed, model, train),
        seed=seed,
        inputs={Path(train).name + "#0": file_sha256(train)} if train else {},
        checkpoint=str(checkpoint),
        workers=workers,
    )
