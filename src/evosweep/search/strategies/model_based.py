"""Model-based strategies (`tpe`, `cmaes`): a sampler proposes one candidate per engine, the
batch is fitted like grid/random's candidates, and its scores go back to the sampler
(search.proposal_search.ProposalSearchCV)."""

from __future__ import annotations

from evosweep import space as search_space
from evosweep.search.strategy import SearchCVStrategy, search_options


class ModelBased(SearchCVStrategy):
    """A strategy whose candidates come from one of proposals.SAMPLERS."""

    sampler: str

    def run(self, job):
        from evosweep.search.fitting import run_search_cv

        search = self.make_search(job.model, job.seed)  # its config errors before the engines
        outcome = run_search_cv(job, search)
        outcome.history = search.history_
        return outcome

    def make_search(self, model, seed):
        from evosweep.search.proposal_search import ProposalSearchCV

        search_space.parse(model.space, model.where("space"))  # its errors before any job
        return ProposalSearchCV(
            model.build(seed),
            dict(model.space),
            sampler=self.sampler,
            n_iter=model.n_iter,
            random_state=seed,
            **search_options(model, seed),
        )
