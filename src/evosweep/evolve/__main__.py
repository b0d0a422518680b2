"""Entry point of one evolution run (the SCOOP origin).

    python -m scoop -n 2 src/evosweep/evolve/__main__.py --spec RUN.json --result OUT.pkl
    python -m evosweep.evolve --spec RUN.json --result OUT.pkl --map serial   # no SCOOP

SCOOP imports this file on every other worker (as SCOOP_WORKER, with the same arguments) before
the worker takes tasks: there it builds the objective and evaluates once, so that no worker pays
those one-off costs inside the origin's timed generations (the origin waits for that, see
ChunkedMap.wait_for_workers). Nothing else below runs unless it is the main program.
"""

import argparse
import logging
import os
import pickle
import sys
import time

# Imported here, at the top, so that it tunes SCOOP on every worker (see tune_scoop).
from evosweep.evolve import parallel

WARM_LINE = "scoop worker: objective warm"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evosweep.evolve", description=__doc__)
    parser.add_argument("--spec", required=True, help="run specification (JSON)")
    parser.add_argument("--result", required=True, help="where the result is pickled")
    parser.add_argument("--map", choices=parallel.MODES, default="scoop", help="evaluation backend")
    return parser


def warm_worker(argv) -> None:
    """Build the run's objective and evaluate once, in this (worker) process."""
    from evosweep.evolve import problems
    from evosweep.evolve.spec import RunSpec

    args, _ = _parser().parse_known_args(argv)
    started = time.perf_counter()
    try:
        problems.build(RunSpec.read(args.spec).objective).warm_up()
    except Exception as error:  # the worker still works, it just starts cold
        sys.stderr.write(f"scoop worker: no warm-up ({type(error).__name__}: {error})\n")
        return
    seconds = time.perf_counter() - started
    sys.stderr.write(f"{WARM_LINE} in {seconds:.2f} s (pid {os.getpid()})\n")


def main(argv=None) -> int:
    from evosweep.errors import EvosweepError
    from evosweep.evolve import checkpoint
    from evosweep.evolve.generations import evolve
    from evosweep.evolve.parallel import ChunkedMap
    from evosweep.evolve.spec import RunSpec

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    run = RunSpec.read(args.spec)
    try:
        mapper = ChunkedMap(args.map, run.workers, run.problem["chunksize"])
    except EvosweepError as error:
        logging.getLogger("evosweep.evolve").error("%s", error)
        return 2
    try:
        with checkpoint.writer_lock(run.checkpoint):
            result = evolve(run, mapper)
    except checkpoint.CheckpointBusy as error:
        logging.getLogger("evosweep.evolve").error("%s", error)
        return 2
    finally:
        mapper.close()
    result.workers, result.map, result.worker_tasks = mapper.workers, args.map, mapper.tasks_sent
    # Written aside, then renamed: a reader never sees half a result.
    partial = f"{args.result}.{os.getpid()}.partial"
    with open(partial, "wb") as handle:
        pickle.dump(result, handle)
    os.replace(partial, args.result)
    return 0


if __name__ == "SCOOP_WORKER":
    warm_worker(sys.argv[1:])

if __name__ == "__main__":
    # SCOOP runs this file inside a future: a SystemExit(0) would be reported as an error.
    exit_code = main()
    if exit_code:
        sys.exit(exit_code)
