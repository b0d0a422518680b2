"""Side-by-side measurement for a noisy host, shared by the benchmarks.

Every variant runs once per round, in reverse order every other round, so a slow spell of the
machine hits the variants alike; figures and ratios are taken within a round and their median
over rounds is reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence


def interleaved_rounds(variants: Sequence[str], measure: Callable, rounds: int) -> list[dict]:
    """[{variant: measure(variant)} for each round]."""
    results = []
    for index in range(rounds):
        order = variants if index % 2 == 0 else variants[::-1]
        results.append({name: measure(name) for name in order})
    return results


def median_over(rounds: list[dict], figure: Callable[[dict], float]) -> float:
    """Median over rounds of `figure(round)`, e.g. a ratio of two variants in one round."""
    return statistics.median(figure(one_round) for one_round in rounds)


def cv_fit_seconds(cv_results, folds: int) -> float:
    """A search's fit and score seconds as its workers timed them (scikit-learn's cv_results_)."""
    per_candidate = cv_results["mean_fit_time"] + cv_results["mean_score_time"]
    return float(sum(per_candidate) * folds)
