"""asha vs halving as schedules alone: how much wall time can asynchronous promotion save with
the same candidates and resources, on any shape of search?

Replays, without fits, the `asha` strategy's own schedule (evosweep.search.asha_schedule) and
scikit-learn's synchronous halving rounds on `--engines` engines, for every combination of eta,
folds, candidates and rungs below. A fit takes its candidate's cost (1 to 4, as bench/sleepy.py's)
times its rung's samples; a candidate's score on a rung is its quality plus noise that shrinks
with the rung. Each fold fit goes to the first free engine, as joblib sends them. Prints the
shapes where asha's wall time is lowest against halving's (median over seeds), with both
strategies' engines-busy fractions and asha's best candidate against halving's, and how many
shapes meet the sleepy goals (asha busy >= 0.95, wall <= 0.75 of halving's, best >= halving's).

    python bench/asha_schedules.py [--engines 8] [--seeds 7] [--top 10]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from evosweep.search.asha_schedule import AshaSchedule, rung_resources  # noqa: E402

FIRST_RUNG = 10  # samples; only ratios matter


def candidates(count: int, seed: int) -> list[tuple[float, int]]:
    """(quality, cost) per candidate."""
    draw = random.Random(seed)
    return [(draw.random(), draw.choice([1, 2, 3, 4])) for _ in range(count)]


def score(candidate: tuple[float, int], rung: int, seed: int) -> float:
    quality, _ = candidate
    return quality + random.Random(f"{seed} {quality} {rung}").gauss(0, 0.05 / (rung + 1))


def halving(pool, resources, folds, engines, eta, seed):
    """(wall, busy fraction, best quality): rounds that each wait for their slowest fit."""
    now, busy, alive = 0.0, 0.0, list(range(len(pool)))
    for rung, samples in enumerate(resources):
        free = [now] * engines
        for candidate in alive:
            for _ in range(folds):
                engine = min(range(engines), key=free.__getitem__)
                free[engine] += pool[candidate][1] * samples
                busy += pool[candidate][1] * samples
        now = max(free)
        ranked = sorted(alive, key=lambda c, r=rung: -score(pool[c], r, seed))
        alive = ranked[: math.ceil(len(alive) / eta)] if rung + 1 < len(resources) else ranked
    return now, busy / (now * engines), pool[alive[0]][0]


def asha(pool, resources, folds, engines, eta, seed):
    """(wall, busy fraction, best quality) of the asha strategy's schedule."""
    schedule = AshaSchedule(len(pool), resources[0], resources[-1], eta)
    now, busy, idle, waiting, running, left = 0.0, 0.0, engines, [], [], {}
    order = itertools.count()
    while not schedule.done:
        while idle and (waiting or (job := schedule.next_job()) is not None):
            if not waiting:
                waiting, left[job] = [job] * folds, folds
            job = waiting.pop()
            seconds = pool[job.candidate][1] * job.resources
            heapq.heappush(running, (now + seconds, next(order), job))
            idle, busy = idle - 1, busy + seconds
        now, _, job = heapq.heappop(running)
        idle, left[job] = idle + 1, left[job] - 1
        if not left[job]:
            schedule.report(job, score(pool[job.candidate], job.rung, seed))
    return now, busy / (now * engines), pool[schedule.best()[0]][0]


def shapes():
    for eta, folds, count, rungs in itertools.product(
        (2, 3, 4), (2, 3, 5), (16, 27, 32, 48, 64, 81, 128, 256), (2, 3, 4, 5)
    ):
        resources = rung_resources(count, FIRST_RUNG, FIRST_RUNG * eta ** (rungs - 1), eta)
        if len(resources) == rungs:
            yield eta, folds, count, resources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for eta, folds, count, resources in shapes():
        runs = []
        for seed in range(args.seeds):
            pool = candidates(count, seed)
            shape = (pool, resources, folds, args.engines, eta, seed)
            runs.append((halving(*shape), asha(*shape)))
        ratio = statistics.median(a[0] / h[0] for h, a in runs)
        busy_h = statistics.median(h[1] for h, _ in runs)
        busy_a = statistics.median(a[1] for _, a in runs)
        worse = sum(a[2] < h[2] for h, a in runs)
        rows.append((ratio, eta, folds, count, len(resources), busy_h, busy_a, worse))
    rows.sort()
    print(f"{len(rows)} shapes, {args.seeds} seeds each, {args.engines} engines; lowest ratios:")
    print("  asha/halving wall  eta folds candidates rungs  busy halving  busy asha  asha worse")
    for ratio, eta, folds, count, rungs, busy_h, busy_a, worse in rows[: args.top]:
        print(
            f"  {ratio:17.3f} {eta:4d} {folds:5d} {count:10d} {rungs:5d} {busy_h:13.3f} "
            f"{busy_a:10.3f} {worse:5d}/{args.seeds}"
        )
    met = [r for r in rows if r[0] <= 0.75 and r[6] >= 0.95 and r[7] == 0]
    print(f"shapes meeting wall <= 0.75, asha busy >= 0.95 and best >= halving's: {len(met)}")


if __name__ == "__main__":
    main()
