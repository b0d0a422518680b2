"""No-op task throughput through our engine cluster, and what each task costs the controller.

For each engine count: a cluster is started, one Parallel call warms it up, then TASKS no-op
calls go through joblib on the cluster's backend (`EngineCluster.joblib_backend()`, n_jobs
as a search gets it). Printed per point: tasks per second, the batches joblib sent, and CPU
milliseconds per task of the controller (the hub and the scheduler and heartbeat processes it
forks), of this process (the client: joblib, the view's bookkeeping) and of the engines. The
controller's CPU per second while idle (heartbeats alone) is measured before the tasks.

    python bench/throughput.py --engines 8 16 32 64            # local engines
    set -a; . tests/slurm/wide.env; set +a                     # the 16-node cluster
    python bench/throughput.py --engines 8 16 32 64 --nodes 16 # one sbatch job per count
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import psutil  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

from evosweep.engines import engine_cluster  # noqa: E402
from slurm_job import json_lines_of_job  # noqa: E402

IDLE_SECONDS = 2.0


def noop(index):
    return index


class BatchCounter:
    """The joblib_backend observer: counts the batches joblib sends."""

    def __init__(self):
        self.batches = 0

    def start_call(self):
        pass

    def submitted(self, calls):
        self.batches += 1

    def completed(self, n_calls):
        pass


def cpu_seconds(processes) -> float:
    total = 0.0
    for process in processes:
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


def controller_processes(engines) -> list[psutil.Process]:
    controller = psutil.Process(engines.cluster.controller.process.pid)
    return [controller, *controller.children(recursive=True)]


def timed_call(engines, tasks: int, batch_size, parties) -> dict:
    """One Parallel call of `tasks` no-op calls: its wall time, batches and CPU by party."""
    counter = BatchCounter()
    with engines.joblib_backend(observer=counter):
        before = [cpu_seconds(processes) for processes in parties.values()]
        started = time.perf_counter()
        results = Parallel(batch_size=batch_size)(delayed(noop)(i) for i in range(tasks))
        seconds = time.perf_counter() - started
        after = [cpu_seconds(processes) for processes in parties.values()]
    if results != list(range(tasks)):
        raise RuntimeError("the no-op tasks returned wrong results")
    cpu = {name: b - a for name, a, b in zip(parties, before, after, strict=True)}
    return {"seconds": seconds, "batches": counter.batches, "cpu": cpu}


def idle_controller_cpu(controller) -> float:
    """The controller's CPU seconds per second with no task in flight: its heartbeats."""
    before = cpu_seconds(controller)
    time.sleep(IDLE_SECONDS)
    return (cpu_seconds(controller) - before) / IDLE_SECONDS


def measure(engines, task_counts, batch_size) -> list[dict]:
    """One point per task count, each with the CPU every party spent per task."""
    controller = controller_processes(engines)
    parties = {
        "controller": controller,
        "client": [psutil.Process()],
        "engines": [psutil.Process(pid) for pid in set(engines.engine_pids())],
    }
    timed_call(engines, engines.n_engines * 4, batch_size, parties)  # warm-up
    idle = idle_controller_cpu(controller)
    points = []
    for tasks in task_counts:
        call = timed_call(engines, tasks, batch_size, parties)
        seconds, cpu = call["seconds"], call["cpu"]
        points.append(
            {
                "engines": engines.n_engines,
                "n_jobs": engines.parallel_jobs,
                "tasks": tasks,
                "seconds": round(seconds, 3),
                "tasks_per_s": round(tasks / seconds),
                "batches": call["batches"],
                "mean_batch": round(tasks / max(call["batches"], 1), 1),
                "controller_idle_cpu_per_s": round(idle, 3),
                # Heartbeats run during the tasks too: less them, the tasks' own cost.
                "controller_ms_per_task": round(1000 * cpu["controller"] / tasks, 4),
                "controller_ms_per_batch": round(
                    1000 * max(0.0, cpu["controller"] - idle * seconds) / call["batches"], 3
                ),
                "client_ms_per_task": round(1000 * cpu["client"] / tasks, 4),
                "engines_ms_per_task": round(1000 * cpu["engines"] / tasks, 4),
            }
        )
    return points


def run_points(engine_counts, task_counts, batch_size, slurm: bool) -> list[dict]:
    points = []
    for n_engines in engine_counts:
        with engine_cluster(
            n_engines,
            slurm=slurm,
            timeout=600,
            tasks=n_engines if slurm else None,
            cpus_per_task=1 if slurm else None,
        ) as engines:
            for point in measure(engines, task_counts, batch_size):
                point = {"where": "srun" if slurm else "local", **point}
                print(json.dumps(point), flush=True)
                points.append(point)
    return points


def submit(n_engines: int, nodes: int, task_counts, batch_size) -> list[dict]:
    """One point in an sbatch job of `n_engines` tasks over `nodes` nodes; its lines."""
    command = [sys.executable, str(Path(__file__).resolve()), f"--engines={n_engines}"]
    command += ["--tasks", *map(str, task_counts), f"--batch-size={batch_size}", "--in-job"]
    lines = json_lines_of_job(command, min(nodes, n_engines), n_engines)
    for line in lines:
        print(json.dumps({**line, "nodes": min(nodes, n_engines)}), flush=True)
    return lines


def batch_size_arg(text: str):
    return text if text == "auto" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--tasks", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--batch-size", type=batch_size_arg, default="auto")
    parser.add_argument("--nodes", type=int, default=0, help="run in Slurm jobs of this many nodes")
    parser.add_argument("--in-job", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nodes:
        for n_engines in args.engines:
            submit(n_engines, args.nodes, args.tasks, args.batch_size)
    else:
        run_points(args.engines, args.tasks, args.batch_size, slurm=args.in_job)


if __name__ == "__main__":
    main()
