"""TPE: `n_iter` candidates proposed by Optuna's multivariate TPE sampler, one per engine at a
time (pending ones by the constant liar)."""

from __future__ import annotations

from evosweep.search.strategies.model_based import ModelBased


class Tpe(ModelBased):
    sampler = "tpe"
