"""CMA-ES: `n_iter` candidates proposed by Optuna's CMA-ES sampler (with margin, so ordered
discrete dimensions do not collapse), one per engine at a time; lists by TPE."""

from __future__ import annotations

from evosweep.search.strategies.model_based import ModelBased


class Cmaes(ModelBased):
    sampler = "cmaes"
