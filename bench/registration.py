"""Engine registration at scale: N engines started K times, every start counted and timed
against its floor.

The floor of a start is the CPU its engines used to get registered (imports, connections,
CURVE handshakes), spread over the machine's cores: no start can be faster on this machine.
A start's ratio is its wall time over its floor. Other users of a shared machine take CPU the
engines wait for, so each start also prints the cores they left free (the machine's cores less
the CPU it spent on other processes during the start, from /proc/stat) and the ratio to the
floor on those cores.

    python bench/registration.py --engines 32 --starts 10             # local engines
    set -a; . tests/slurm/wide.env; set +a                            # the 16-node cluster
    python bench/registration.py --engines 64 --starts 10 --nodes 16  # one sbatch job

--preload names modules the engines import as a search's do (its estimator's, e.g.
sklearn.model_selection sklearn.svm); each start then also prints `ready_seconds`, from the
call to the cluster ready with them imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import psutil  # noqa: E402

from evosweep.engines import ENGINE_CMD, EngineStartError, engine_cluster  # noqa: E402
from slurm_job import json_lines_of_job  # noqa: E402

HANG_GUARD_SECONDS = 600


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def own_cpu(process: psutil.Process) -> float:
    return sum(process.cpu_times()[:2])


def start_cpu(engines, pids: list[int]) -> dict[str, float]:
    """CPU seconds so far of the engines, the controller (and the schedulers it forked) and
    what launched the engines: this process, srun and the steps' slurmstepd on the nodes."""
    controller = psutil.Process(engines.cluster.controller.process.pid)
    engine_processes = [psutil.Process(pid) for pid in pids]
    # Engines are forked by one engine program (local, or each node's srun task) once it has
    # imported what they need.
    engine_processes += {
        process.parent()
        for process in engine_processes
        if process.parent().cmdline()[: len(ENGINE_CMD)] == ENGINE_CMD
    }
    this = psutil.Process()
    launch = {this, *this.children()} | {process.parent() for process in engine_processes}
    launch -= {controller, *engine_processes}
    return {
        "engines": sum(map(own_cpu, engine_processes)),
        "controller": sum(map(own_cpu, [controller, *controller.children(True)])),
        "launch": sum(map(own_cpu, launch)),
    }


def one_start(n_engines: int, slurm: bool, preload: tuple[str, ...]) -> dict:
    """One start, its wall time, its floor and its ratio to the floor; `free_ratio` is the ratio
    to the floor on the cores the machine's other users left free meanwhile."""
    machine_before = machine_cpu_seconds()
    this_before = own_cpu(psutil.Process())
    called = time.monotonic()
    try:
        with engine_cluster(
            n_engines,
            slurm=slurm,
            timeout=HANG_GUARD_SECONDS,
            tasks=n_engines if slurm else None,
            cpus_per_task=1 if slurm else None,
            preload=preload,
        ) as engines:
            ready = time.monotonic() - called
            machine = machine_cpu_seconds() - machine_before
            seconds = engines.start_seconds
            pids = engines.engine_pids()
            cpu = start_cpu(engines, pids)
    except EngineStartError as error:
        return {"registered": False, "error": str(error)}
    cpu["launch"] -= this_before
    floor = cpu["engines"] / os.cpu_count()
    others = max(0.0, machine - sum(cpu.values()))
    free_cores = max(os.cpu_count() - others / seconds, 0.1)
    return {
        "registered": len(set(pids)) == n_engines,
        "seconds": round(seconds, 2),
        "ready_seconds": round(ready, 2),
        "floor": round(floor, 2),
        "ratio": round(seconds / floor, 2),
        "free_cores": round(free_cores, 2),
        "free_ratio": round(seconds * free_cores / cpu["engines"], 2),
        "cpu": {key: round(value, 1) for key, value in {**cpu, "machine": machine}.items()},
    }


def run_starts(n_engines: int, starts: int, slurm: bool, preload: tuple[str, ...]) -> list[dict]:
    results = []
    for index in range(starts):
        result = one_start(n_engines, slurm, preload)
        print(json.dumps({"start": index + 1, "engines": n_engines, **result}), flush=True)
        results.append(result)
    return results


def summary(n_engines: int, results: list[dict], where: str) -> str:
    good = [r for r in results if r["registered"]]
    line = f"{n_engines} engines ({where}): {len(good)} of {len(results)} starts registered all"
    if good:

        def median(key):
            return statistics.median(r[key] for r in good)

        line += (
            f"; start median {median('seconds'):.1f} s (max {max(r['seconds'] for r in good):.1f})"
            f", floor median {median('floor'):.1f} s, ratio median {median('ratio'):.2f}"
            f" (max {max(r['ratio'] for r in good):.2f}); on the cores others left free:"
            f" {median('free_cores'):.2f} cores, ratio median {median('free_ratio'):.2f}"
            f" (max {max(r['free_ratio'] for r in good):.2f}); ready (from the call, modules"
            f" imported) median {median('ready_seconds'):.1f} s"
        )
    return line


def submit(args) -> list[dict]:
    """Run the starts in one sbatch job of `engines` tasks over `nodes` nodes; its lines."""
    command = [sys.executable, str(Path(__file__).resolve())]
    command += [f"--engines={args.engines}", f"--starts={args.starts}", "--in-job"]
    command += ["--preload", *args.preload] if args.preload else []
    lines = json_lines_of_job(command, args.nodes, args.engines)
    for line in lines:
        print(json.dumps(line))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=32)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument(
        "--nodes", type=int, default=0, help="run in a Slurm job of this many nodes"
    )
    parser.add_argument("--preload", nargs="*", default=[], help="modules engines import")
    parser.add_argument("--in-job", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_job:
        run_starts(args.engines, args.starts, True, tuple(args.preload))
        return
    if args.nodes:
        results = submit(args)
        print(summary(args.engines, results, f"srun over {args.nodes} nodes"))
    else:
        results = run_starts(args.engines, args.starts, False, tuple(args.preload))
        print(summary(args.engines, results, "local"))


if __name__ == "__main__":
    main()
