"""ASHA's scheduling logic: rungs, promotion as soon as a candidate ranks in its rung's top
1/eta, asynchronous driving by several engines, failed fits, and bad settings."""

import heapq

import pytest

from evosweep.search.asha_schedule import AshaSchedule, Job, rung_resources


def quality(candidate: int) -> float:
    """A fixed score per candidate, the same on every rung (candidate 17 is the best)."""
    return -abs(candidate - 17) / 100


def test_rungs_grow_by_eta_up_to_the_samples_and_the_candidates():
    assert rung_resources(64, 40, 1000, 3) == [40, 120, 360]
    assert rung_resources(27, 10, 100000, 3) == [10, 30, 90, 270]
    assert rung_resources(26, 10, 100000, 3) == [10, 30, 90]
    assert rung_resources(1, 5, 50, 2) == [5]
    assert rung_resources(100, 100, 100, 4) == [100]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((10, 5, 50, 1), "eta must be an integer >= 2"),
        ((10, 5, 50, 2.5), "eta must be an integer >= 2"),
        ((10, 60, 50, 3), "1 <= min_resources <= max_resources"),
        ((10, 0, 50, 3), "1 <= min_resources <= max_resources"),
        ((0, 5, 50, 3), "n_candidates must be >= 1"),
    ],
)
def test_bad_settings_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        rung_resources(*arguments)


def test_a_candidate_is_promoted_as_soon_as_it_ranks_in_the_top_third():
    schedule = AshaSchedule(n_candidates=9, min_resources=10, max_resources=90, eta=3)
    jobs = [schedule.next_job() for _ in range(3)]
    assert jobs == [Job(0, 0, 10), Job(1, 0, 10), Job(2, 0, 10)]
    schedule.report(jobs[0], 0.5)
    schedule.report(jobs[1], 0.9)
    # Two results: nobody is in the top third yet, so a new candidate starts.
    assert schedule.next_job() == Job(3, 0, 10)
    schedule.report(jobs[2], 0.1)
    # Three results: candidate 1 (0.9) is the top third and goes up at once.
    assert schedule.next_job() == Job(1, 1, 30)
    assert schedule.next_job() == Job(4, 0, 10)


def fit_time(engine_speed: int, job: Job) -> float:
    """Fit times vary 1:4 across candidates and grow with the samples."""
    return engine_speed * job.resources * (1 + job.candidate % 4)


def simulate_asha(schedule: AshaSchedule, speeds) -> tuple[float, float]:
    """Engines of the given speeds ask for work whenever idle; (busy seconds, makespan)."""
    events, busy, clock, started = [], 0.0, 0.0, 0
    idle = list(speeds)
    while True:
        while idle and (job := schedule.next_job()) is not None:
            speed, started = idle.pop(), started + 1
            heapq.heappush(events, (clock + fit_time(speed, job), started, speed, job))
            busy += fit_time(speed, job)
        if not events:
            return busy, clock
        clock, _, speed, job = heapq.heappop(events)
        idle.append(speed)
        schedule.report(job, quality(job.candidate))


def simulate_synchronous(resources, n_candidates: int, eta: int, speeds) -> tuple[float, float]:
    """Synchronous halving: each round's fits go to the first free engine, the next round
    starts when the round's slowest fit ends."""
    survivors, busy, clock = list(range(n_candidates)), 0.0, 0.0
    for rung, samples in enumerate(resources):
        free = [(clock, speed) for speed in speeds]
        for candidate in survivors:
            start, speed = heapq.heappop(free)
            seconds = fit_time(speed, Job(candidate, rung, samples))
            busy += seconds
            heapq.heappush(free, (start + seconds, speed))
        clock = max(end for end, _ in free)
        survivors = sorted(survivors, key=quality, reverse=True)[: len(survivors) // eta]
    return busy, clock


def test_engines_stay_busier_than_in_synchronous_rounds():
    speeds = (1, 1, 1, 1)
    schedule = AshaSchedule(n_candidates=81, min_resources=10, max_resources=1000, eta=3)
    busy, makespan = simulate_asha(schedule, speeds)
    sync_busy, sync_makespan = simulate_synchronous(schedule.resources, 81, 3, speeds)
    asha_share = busy / (len(speeds) * makespan)
    sync_share = sync_busy / (len(speeds) * sync_makespan)
    assert schedule.done and schedule.started == 81
    assert asha_share > sync_share
    # Every rung ends with at least as many results as the synchronous rounds (81, 27, 9, 3, 1).
    counts = [len(rung) for rung in schedule.results]
    assert all(n >= sync for n, sync in zip(counts, (81, 27, 9, 3, 1), strict=True)), counts
    assert schedule.best() == (17, 4, quality(17))


def test_failed_fits_are_never_promoted():
    schedule = AshaSchedule(n_candidates=3, min_resources=1, max_resources=9, eta=3)
    jobs = [schedule.next_job() for _ in range(3)]
    for job in jobs:
        schedule.report(job, None if job.candidate == 0 else float("nan"))
    assert schedule.next_job() is None and schedule.done
    assert schedule.best() is None
    schedule = AshaSchedule(n_candidates=3, min_resources=1, max_resources=9, eta=3)
    jobs = [schedule.next_job() for _ in range(3)]
    for job, score in zip(jobs, (None, 0.2, 0.3), strict=True):
        schedule.report(job, score)
    assert schedule.next_job() == Job(2, 1, 3)


def test_done_waits_for_running_jobs_and_pending_promotions():
    schedule = AshaSchedule(n_candidates=3, min_resources=1, max_resources=9, eta=3)
    jobs = [schedule.next_job() for _ in range(3)]
    assert schedule.next_job() is None and not schedule.done  # three fits still run
    for job, score in zip(jobs, (0.1, 0.7, 0.4), strict=True):
        schedule.report(job, score)
    assert not schedule.done  # candidate 1 is promotable
    top = schedule.next_job()
    assert top == Job(1, 1, 3) and not schedule.done
    schedule.report(top, 0.8)
    assert schedule.done and schedule.best() == (1, 1, 0.8)


def test_the_same_calls_give_the_same_jobs():
    def drive():
        schedule = AshaSchedule(n_candidates=20, min_resources=2, max_resources=200, eta=2)
        jobs, running = [], []
        while not schedule.done:
            while len(running) < 3 and (job := schedule.next_job()) is not None:
                running.append(job)
                jobs.append(job)
            finished = running.pop(len(running) // 2)  # out of order
            schedule.report(finished, round(quality(finished.candidate), 2))  # with ties
        return jobs

    assert drive() == drive()
