"""Run one evolution (in the SCOOP origin or serially) and launch it under `python -m scoop`.

`evolve` is the generation loop with checkpoints; `launch` starts SCOOP (through the srun shim
inside a Slurm allocation), streams the origin's progress lines into the rule log and returns the
result the origin pickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from deap import tools

from evosweep.errors import EvosweepError
from evosweep.evolve import algorithms, checkpoint, problems
from evosweep.evolve.cache import FitnessCache

HERE = Path(__file__).resolve().parent
SCOOP_MAIN = HERE / "__main__.py"
SRUN_SHIM = HERE / "srun_ssh.sh"
SRC_DIR = HERE.parents[1]


class EvolveError(EvosweepError):
    """The evolution could not run or did not finish."""


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_identity(run: dict) -> dict:
    """What determines the results: checkpoints of any other identity are not reused."""
    return {key: run[key] for key in ("problem", "objective", "seed", "inputs")}


def _statistics(population, objective) -> dict:
    values = np.array([ind.fitness.values for ind in population], dtype=float)
    stats = {}
    for column, name in enumerate(objective.names):
        data = values[:, column]
        stats.update(
            {
                f"{name}_min": float(data.min()),
                f"{name}_avg": float(data.mean()),
                f"{name}_max": float(data.max()),
                f"{name}_std": float(data.std()),
            }
        )
    return stats


def _progress(record: dict, generations: int, objective) -> str:
    parts = []
    for name, weight in zip(objective.names, objective.weights, strict=True):
        best = record[f"{name}_max"] if weight > 0 else record[f"{name}_min"]
        parts.append(f"{name} best {best:.6g} avg {record[f'{name}_avg']:.6g}")
    return (
        f"generation {record['generation']}/{generations}: {record['evaluations']} evaluations, "
        f"{record['cache_hits']} cache hits, {'; '.join(parts)} ({record['elapsed']:.1f} s)"
    )


def evolve(run: dict, mapper, log: logging.Logger) -> dict:
    """The generation loop; resumes from `run['checkpoint']` when it matches this run."""
    problem, seed = run["problem"], run["seed"]
    objective = problems.build(run["objective"])
    cache = FitnessCache(keep_genomes=objective.genome == "genes")

    def evaluate(individuals) -> tuple[int, int]:
        genomes = [list(ind) for ind in individuals]
        results, hits = cache.evaluate(genomes, lambda batch: mapper(run["objective"], batch))
        for individual, result in zip(individuals, results, strict=True):
            individual.fitness.values = result[: len(objective.weights)]
        return len(genomes) - hits, hits

    algorithm = algorithms.create(problem, objective, evaluate)
    fingerprint = checkpoint.fingerprint(run_identity(run))
    saved = checkpoint.load(run["checkpoint"], fingerprint, log) if run.get("checkpoint") else None
    started = time.perf_counter()
    if saved:
        algorithm.restore(saved["algorithm"])
        algorithms.restore_rng(saved["rng"])
        cache.restore(saved["cache"])
        logbook, generation = saved["logbook"], saved["generation"]
        elapsed_before = saved["elapsed"]
    else:
        algorithms.seed_everything(seed)
        logbook, generation, elapsed_before = tools.Logbook(), -1, 0.0

    def record(gen, population, evaluations, hits):
        entry = {"generation": gen, "evaluations": evaluations, "cache_hits": hits}
        entry.update(_statistics(population, objective))
        entry["elapsed"] = elapsed_before + time.perf_counter() - started
        logbook.record(**entry)
        log.info("%s", _progress(entry, problem["generations"], objective))

    if generation < 0:
        population, evaluations, hits = algorithm.initialize()
        generation = 0
        if population:  # CMA-ES has no generation 0 to record
            record(0, population, evaluations, hits)
    every = problem["checkpoint_every"]
    while generation < problem["generations"]:
        generation += 1
        population, evaluations, hits = algorithm.step()
        record(generation, population, evaluations, hits)
        # No checkpoint after the last generation: the outputs are written next.
        if (
            run.get("checkpoint")
            and generation % every == 0
            and generation < problem["generations"]
        ):
            checkpoint.save(
                run["checkpoint"],
                {
                    "fingerprint": fingerprint,
                    "generation": generation,
                    "algorithm": algorithm.state(),
                    "rng": algorithms.rng_state(),
                    "cache": cache.state(),
                    "logbook": logbook,
                    "elapsed": logbook[-1]["elapsed"],
                },
            )
            log.info("checkpoint written at generation %d", generation)
    return {
        "logbook": list(logbook),
        "hall": [(list(ind), tuple(ind.fitness.values)) for ind in algorithm.hall],
        "population": [(list(ind), tuple(ind.fitness.values)) for ind in algorithm.population],
        "evaluations": int(sum(entry["evaluations"] for entry in logbook)),
        "cache_hits": int(sum(entry["cache_hits"] for entry in logbook)),
        "unique_evaluations": len(cache),
        "evaluated": cache.evaluated(),
        "wall_seconds": logbook[-1]["elapsed"] if len(logbook) else 0.0,
        "objective_names": list(objective.names),
        "weights": list(objective.weights),
    }


# --------------------------------------------------------------------------- launching


def slurm_allocation() -> bool:
    return bool(os.environ.get("SLURM_JOB_ID"))


def default_workers(configured: int | None, threads: int, tasks: int | None = None) -> int:
    """evolve.workers, else the job's tasks on Slurm, else the rule's threads.

    Snakemake's slurm-jobstep plugin strips SLURM_NTASKS from the rule's environment, so the
    rule passes its `tasks` resource.
    """
    if configured:
        return configured
    if slurm_allocation():
        return int(tasks or os.environ.get("SLURM_NTASKS") or threads or 1)
    return max(1, threads)


def _scontrol(*args: str) -> str:
    return subprocess.run(
        ["scontrol", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def slurm_hosts() -> list[str]:
    """The allocation's nodes, batch host first (the SCOOP origin runs there).

    Read from scontrol, because the slurm-jobstep plugin strips SLURM_NODELIST from the rule.
    """
    fields = dict(
        item.split("=", 1)
        for item in _scontrol("show", "job", "-o", os.environ["SLURM_JOB_ID"]).split()
        if "=" in item
    )
    hosts = _scontrol("show", "hostnames", fields["NodeList"]).split()
    batch = fields.get("BatchHost")
    return sorted(hosts, key=lambda host: host != batch)


def write_hostfile(path: Path, hosts: list[str], workers: int) -> Path:
    """SCOOP hostfile spreading `workers` round-robin over `hosts`."""
    counts = [workers // len(hosts) + (i < workers % len(hosts)) for i in range(len(hosts))]
    path.write_text("".join(f"{h} {n}\n" for h, n in zip(hosts, counts, strict=True) if n))
    return path


def scoop_command(spec_path: Path, workers: int) -> list[str]:
    command = [sys.executable, "-m", "scoop", "-n", str(workers)]
    if slurm_allocation():
        # SCOOP's only remote launcher is ssh: it gets a stand-in that starts each host's
        # workers as an srun step inside this allocation (no sshd, no keys).
        hostfile = write_hostfile(spec_path.with_suffix(".hosts"), slurm_hosts(), workers)
        command += ["--hostfile", str(hostfile), "--ssh-executable", str(SRUN_SHIM)]
    return command + [str(SCOOP_MAIN), "--spec", str(spec_path), "--map", "scoop"]


def launch(run: dict, workers: int, log: logging.Logger, map_mode: str = "scoop") -> dict:
    """Run `run` under SCOOP with `workers` workers (or serially); return the origin's result."""
    state_dir = Path(run["checkpoint"]).parent
    state_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(run["checkpoint"]).stem
    spec_path = state_dir / f"{stem}.run.json"
    result_path = state_dir / f"{stem}.result.pkl"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps({**run, "result": str(result_path)}, indent=1))
    if map_mode == "scoop":
        command = scoop_command(spec_path, workers)
    else:
        command = [sys.executable, str(SCOOP_MAIN), "--spec", str(spec_path), "--map", map_mode]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC_DIR), env.get("PYTHONPATH")]))
    log.info("launching: %s", " ".join(command))
    # Own session: on SIGTERM (Slurm time limit, Snakemake stop) the whole SCOOP tree is ended.
    process = subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    log.info("SCOOP launcher pid %d (leads its own process group)", process.pid)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        for line in process.stderr:
            log.info("%s", line.rstrip())
        process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        _end_group(process)
    if not result_path.exists():
        raise EvolveError(
            f"evolve error: problem {run['name']!r} did not finish (exit code "
            f"{process.returncode}); see the lines above in this log"
        )
    with open(result_path, "rb") as handle:
        result = pickle.load(handle)
    result_path.unlink()
    spec_path.unlink(missing_ok=True)
    spec_path.with_suffix(".hosts").unlink(missing_ok=True)
    return result


class Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise Terminated(f"terminated by signal {signum}")


def _end_group(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        # The launcher is gone; make sure no worker of its session outlives it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
