"""`ProposalSearchCV`: a scikit-learn search whose candidates a model-based sampler proposes,
one per engine at a time, learning from the scores of those before (the `tpe` and `cmaes`
strategies).

A `BaseSearchCV`, so the fits, the journal, progress, cv_results_ and the refit are the other
searches'. Deterministic for a seed and a batch size: the sampler is seeded and told the same
scores in the same order, so a resumed run (whose journal answers the fits it holds) proposes
what the interrupted one did.
"""

from __future__ import annotations

import time
from numbers import Integral

import numpy as np
from joblib import effective_n_jobs
from sklearn.model_selection._search import BaseSearchCV
from sklearn.utils._param_validation import Interval, StrOptions

from evosweep.search import proposals

ORDER_COLUMN = "proposal_order"


class ProposalSearchCV(BaseSearchCV):
    """`n_iter` distinct candidates of `space` (our syntax), proposed by `sampler` ("tpe",
    "cmaes") `batch_size` at a time (None: as many as joblib runs at once, one per engine).

    `history_`: seconds from the start of the search to each candidate's score, in
    cv_results_ order."""

    _parameter_constraints: dict = {
        **BaseSearchCV._parameter_constraints,
        "space": [dict],
        "sampler": [StrOptions(set(proposals.SAMPLERS))],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        estimator,
        space,
        *,
        sampler="tpe",
        n_iter=20,
        random_state=0,
        batch_size=None,
        scoring=None,
        n_jobs=None,
        refit=True,
        cv=None,
        verbose=0,
        pre_dispatch="2*n_jobs",
        error_score=np.nan,
        return_train_score=False,
    ):
        self.space = space
        self.sampler = sampler
        self.n_iter = n_iter
        self.random_state = random_state
        self.batch_size = batch_size
        super().__init__(
            estimator=estimator,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )

    def _run_search(self, evaluate_candidates):
        started = time.perf_counter()
        proposer = proposals.proposer(self.sampler, self.space, self.random_state)
        batch_size = self.batch_size or effective_n_jobs(self.n_jobs)
        score = f"mean_test_{self.refit if isinstance(self.refit, str) else 'score'}"
        self.history_ = []
        while len(proposer.order) < self.n_iter and not proposer.exhausted():
            batch = proposer.ask(min(batch_size, self.n_iter - len(proposer.order)))
            results = evaluate_candidates(
                [candidate.params for candidate in batch],
                more_results={ORDER_COLUMN: [candidate.order for candidate in batch]},
            )
            for candidate, value in zip(batch, results[score][-len(batch) :], strict=True):
                proposer.tell(candidate, value)
            self.history_ += [time.perf_counter() - started] * len(batch)
