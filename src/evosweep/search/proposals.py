"""Model-based proposals: Optuna's samplers over our space syntax, asked in batches.

Pure logic, no engines: a :class:`Proposer` hands out batches of distinct, never-evaluated
candidates (one per engine) and learns their scores; the caller fits them however it likes.

Space mapping (:func:`distribution`): the grid forms (``logspace``, ``linspace``, ``range``) are
ORDERED and sampled by index, so a logspace is sampled on its log scale; lists stay categorical
(also sampled by index, so any YAML value works); ``loguniform``/``uniform``/``randint`` are
Optuna's float/int distributions.
"""

from __future__ import annotations

import logging
import math
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evosweep import space as search_space
from evosweep.space import Dimension

log = logging.getLogger(__name__)

# After this many proposals in a row that were all evaluated or pending, the sampler has
# converged on a finite space: the next candidate is an unseen one drawn at random.
MAX_REPEATS = 20
# What a sampler raises when its model has diverged (CMA-ES on a noisy plateau: its step size
# grows until the cmaes library's overflow assertion stops it); the sampler then starts again.
DIVERGED = (AssertionError, FloatingPointError, ArithmeticError)


def distribution(dim: Dimension):
    """The Optuna distribution of one dimension (indices for finite dimensions)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if dim.form == "list":
        return CategoricalDistribution(tuple(range(len(dim.args))))
    if dim.form == "loguniform":
        return FloatDistribution(*dim.args, log=True)
    if dim.form == "uniform":
        return FloatDistribution(*dim.args)
    if dim.form == "randint":
        return IntDistribution(int(dim.args[0]), int(dim.args[1]) - 1)
    return IntDistribution(0, len(dim.values()) - 1)


def finite_size(dims: dict[str, Dimension]) -> int | None:
    """Number of distinct candidates, or None when a dimension is continuous."""
    sizes = []
    for dim in dims.values():
        if dim.form in ("loguniform", "uniform"):
            return None
        sizes.append(dim.args[1] - dim.args[0] if dim.form == "randint" else len(dim.values()))
    return math.prod(int(size) for size in sizes)


@dataclass(frozen=True)
class Candidate:
    """One proposal: `order` counts proposals from 0; `key` is its identity (indices for
    finite dimensions, the value for continuous ones); `params` go to the estimator."""

    order: int
    key: tuple
    params: dict


@dataclass
class _Pending:
    candidate: Candidate
    trials: list = field(default_factory=list)  # the proposal and any repeats of it


class Proposer:
    """Ask for `k` distinct new candidates at once, tell their scores (higher is better).

    A proposal the sampler repeats is never fitted again: an evaluated one is told its known
    score at once, a pending one shares the score when it arrives. Deterministic for a seed and
    the same sequence of asks and tells.
    """

    def __init__(self, space: dict, make_sampler: Callable, seed: int, where: str = "space"):
        import optuna

        # Optuna's line per finished trial would repeat our progress; our journal is the record.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.dims = search_space.parse(space, where)
        self.distributions = {name: distribution(dim) for name, dim in self.dims.items()}
        self.size = finite_size(self.dims)
        self.make_sampler = make_sampler  # seed -> a new sampler
        self.seed = seed
        self.restarts = 0
        self.study = self._new_study(make_sampler(seed))
        self.rng = random.Random(seed)
        self.scores: dict[tuple, float] = {}
        self.pending: dict[tuple, _Pending] = {}
        self.order: list[Candidate] = []  # every candidate, in proposal order

    def exhausted(self) -> bool:
        return self.size is not None and len(self.scores) + len(self.pending) >= self.size

    def ask(self, k: int) -> list[Candidate]:
        """Up to `k` candidates (fewer only when a finite space has no unseen one left)."""
        batch: list[Candidate] = []
        repeats = 0
        while len(batch) < k and not self.exhausted():
            if repeats >= MAX_REPEATS:
                self.study.enqueue_trial(self._unseen_at_random())
                repeats = 0
            trial = self._ask_trial()
            key = tuple(trial.params[name] for name in self.dims)
            if key in self.scores:
                self.study.tell(trial, self.scores[key])
                repeats += 1
            elif key in self.pending:
                self.pending[key].trials.append(trial)
                repeats += 1
            else:
                candidate = Candidate(len(self.order), key, self.params(key))
                self.pending[key] = _Pending(candidate, [trial])
                self.order.append(candidate)
                batch.append(candidate)
        return batch

    def tell(self, candidate: Candidate, score: float | None) -> None:
        """The candidate's score; None or NaN (a failed fit) fails its trials."""
        from optuna.trial import TrialState

        pending = self.pending.pop(candidate.key)
        failed = score is None or not math.isfinite(score)
        for trial in pending.trials:  # asked of this study or of one before a restart
            if failed:
                trial.study.tell(trial, state=TrialState.FAIL)
            else:
                trial.study.tell(trial, score)
        if not failed:
            self.scores[candidate.key] = float(score)
            if all(trial.study is not self.study for trial in pending.trials):
                self._add_known(candidate.key, float(score))

    def params(self, key: tuple) -> dict[str, Any]:
        params = {}
        for (name, dim), value in zip(self.dims.items(), key, strict=True):
            if dim.form == "list":
                params[name] = dim.args[value]
            elif dim.is_distribution:
                params[name] = value
            else:
                params[name] = dim.values()[value]
        return params

    def _ask_trial(self):
        from optuna.exceptions import ExperimentalWarning

        with warnings.catch_warnings():
            # CMA-ES samples lists with its independent sampler: that is the design, not news.
            warnings.filterwarnings("ignore", category=ExperimentalWarning)
            warnings.filterwarnings("ignore", message=".*independent.*")
            warnings.filterwarnings("ignore", message=".*invalid value encountered.*")
            try:
                return self.study.ask(self.distributions)
            except DIVERGED:
                self._restart()
                return self.study.ask(self.distributions)

    def _new_study(self, sampler):
        import optuna

        return optuna.create_study(
            direction="maximize", sampler=sampler, storage=optuna.storages.InMemoryStorage()
        )

    def _restart(self) -> None:
        """A new sampler (its own seed) in a new study that knows every score so far."""
        self.restarts += 1
        log.info(
            "the sampler diverged; started a new one with the %d scores so far", len(self.scores)
        )
        self.study = self._new_study(self.make_sampler(self.seed + self.restarts))
        for key, score in self.scores.items():
            self._add_known(key, score)

    def _add_known(self, key: tuple, score: float) -> None:
        from optuna.trial import create_trial

        params = dict(zip(self.dims, key, strict=True))
        self.study.add_trial(
            create_trial(params=params, distributions=self.distributions, value=score)
        )

    def _unseen_at_random(self) -> dict[str, Any]:
        """An unseen, not pending candidate's Optuna params (finite spaces only)."""
        sizes = [
            dist.high - dist.low + 1 if hasattr(dist, "high") else len(dist.choices)
            for dist in self.distributions.values()
        ]
        while True:  # the space is not exhausted, so an unseen key exists
            flat = self.rng.randrange(math.prod(sizes))
            key = []
            for size in reversed(sizes):
                flat, index = divmod(flat, size)
                key.append(index)
            key = tuple(
                dist.low + index if hasattr(dist, "high") else dist.choices[index]
                for dist, index in zip(self.distributions.values(), reversed(key), strict=True)
            )
            if key not in self.scores and key not in self.pending:
                return dict(zip(self.dims, key, strict=True))


def tpe_sampler(seed: int, dims: dict[str, Dimension]):
    from optuna.samplers import TPESampler

    # Multivariate TPE with the constant liar for pending candidates; 5 random candidates before
    # the model (Optuna's default 10) measured better on bench/tables (README).
    return TPESampler(seed=seed, multivariate=True, constant_liar=True, n_startup_trials=5)


def cmaes_sampler(seed: int, dims: dict[str, Dimension]):
    from optuna.samplers import CmaEsSampler

    # CMA-ES with margin keeps discrete (index) dimensions from collapsing; population 4
    # (default 4 + 3 ln n) measured better on bench/tables; lists go to TPE, not random.
    return CmaEsSampler(
        seed=seed,
        with_margin=True,
        popsize=4,
        independent_sampler=tpe_sampler(seed, dims),
        warn_independent_sampling=False,
    )


SAMPLERS: dict[str, Callable[[int, dict[str, Dimension]], Any]] = {
    "tpe": tpe_sampler,
    "cmaes": cmaes_sampler,
}


def proposer(strategy: str, space: dict, seed: int, where: str = "space") -> Proposer:
    """The proposer of a model-based strategy (a name of SAMPLERS)."""
    from optuna.exceptions import ExperimentalWarning

    dims = search_space.parse(space, where)

    def make_sampler(sampler_seed: int):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ExperimentalWarning)  # with_margin: chosen
            return SAMPLERS[strategy](sampler_seed, dims)

    return Proposer(space, make_sampler, seed, where)
