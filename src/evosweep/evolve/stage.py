"""The evolution stage as the rules see it: config checks, run specs, outputs.

Imported by the Snakefile for its config checks, so the module level imports nothing heavy.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from evosweep.errors import ConfigError

# Problem keys that shape a run's results (so they are part of its checkpoint fingerprint).
ALGORITHM_KEYS = {
    "cma-es": ("generations", "centroid", "sigma", "lambda"),
    "ga": ("generations", "population", "crossover", "mutation", "gene_mutation", "tournament"),
    "nsga2": ("generations", "population", "crossover", "mutation", "gene_mutation"),
}
CONTINUOUS_OBJECTIVES = ("rastrigin", "sphere")


def _fail(where: str, message: str):
    raise ConfigError(f"config error at {where}: {message} (fix config/config.yaml)")


def check_problem(name: str, spec: dict, models: dict) -> None:
    """Settings the schema cannot check; raises a one-line ConfigError naming the key."""
    where = f"evolve.problems.{name}"
    algorithm, objective = spec["algorithm"], spec["objective"]
    if algorithm == "cma-es" and objective not in CONTINUOUS_OBJECTIVES:
        _fail(
            f"{where}.algorithm",
            f"cma-es samples real vectors; objective {objective!r} needs ga or nsga2",
        )
    if algorithm == "nsga2" and spec["population"] % 4:
        _fail(
            f"{where}.population",
            f"nsga2 needs a population divisible by 4 (DEAP's selTournamentDCD), got "
            f"{spec['population']}",
        )
    if algorithm == "ga" and spec["tournament"] > spec["population"]:
        _fail(
            f"{where}.tournament",
            f"tournament size {spec['tournament']} exceeds the population {spec['population']}",
        )
    if objective == "feature_selection":
        model = models[spec["model"]]  # existence is checked by evosweep.config
        if model.get("scoring") == "silhouette" or "cluster" in model["estimator"].lower():
            _fail(
                f"{where}.model",
                f"feature selection needs a supervised model to score subsets; "
                f"{spec['model']!r} is a clustering model",
            )


def check_evolutionary_model(name: str, spec: dict) -> None:
    from evosweep import space as search_space

    where = f"search.models.{name}"
    search_space.genes(spec["space"], f"{where}.space")
    evolution = spec["evolution"]
    if evolution["tournament"] > evolution["population"]:
        _fail(
            f"{where}.evolution.tournament",
            f"tournament size {evolution['tournament']} exceeds the population "
            f"{evolution['population']}",
        )


def check_config(config: dict) -> None:
    """All evolution checks, before any job runs."""
    models = config.get("search", {}).get("models", {})
    for name, spec in config.get("evolve", {}).get("problems", {}).items():
        check_problem(name, spec, models)
    for name, spec in models.items():
        if spec.get("strategy") == "evolutionary":
            check_evolutionary_model(name, spec)


# --------------------------------------------------------------------------- run specs


def problem_settings(spec: dict) -> dict:
    settings = {key: spec.get(key) for key in ALGORITHM_KEYS[spec["algorithm"]]}
    settings.update(
        algorithm=spec["algorithm"],
        checkpoint_every=spec.get("checkpoint_every", 10),
        chunksize=spec.get("chunksize"),
    )
    return settings


def objective_spec(spec: dict, seed: int, model: dict | None, best_params: dict | None, train):
    if spec["objective"] in CONTINUOUS_OBJECTIVES:
        return {"objective": spec["objective"], "dimensions": spec["dimensions"]}
    return {
        "objective": "feature_selection",
        "train": str(train),
        "estimator": model["estimator"],
        "params": {**model.get("params", {}), **(best_params or {})},
        "cv": spec["cv"],
        "scoring": model.get("scoring", "accuracy"),
        "seed": seed,
    }


def _inputs(*paths) -> dict:
    from evosweep.evolve.runner import file_sha256

    return {Path(p).name + f"#{i}": file_sha256(p) for i, p in enumerate(paths) if p}


def load_best_params(path) -> dict:
    data = json.loads(Path(path).read_text())
    return data.get("params", data) if isinstance(data.get("params"), dict) else data


def run_problem(
    name: str,
    spec: dict,
    seed: int,
    workers: int,
    out_dir,
    checkpoint,
    log: logging.Logger,
    model: dict | None = None,
    best_params_path=None,
    train=None,
    dpi: int = 110,
    map_mode: str = "scoop",
) -> dict:
    """Run one `evolve.problems` entry and write its outputs into `out_dir`."""
    from evosweep.evolve import outputs, runner

    best_params = load_best_params(best_params_path) if best_params_path else None
    run = {
        "name": name,
        "problem": problem_settings(spec),
        "objective": objective_spec(spec, seed, model, best_params, train),
        "seed": seed,
        "inputs": _inputs(train),
        "checkpoint": str(checkpoint),
        "workers": workers,
    }
    log.info(
        "problem %s: %s on %s, %d worker(s)", name, spec["algorithm"], spec["objective"], workers
    )
    result = runner.launch(run, workers, log, map_mode)
    out_dir = Path(out_dir)
    outputs.write_logbook(result, out_dir / "logbook.csv")
    title = f"{name}: {spec['algorithm']} on {spec['objective']}"
    outputs.plot_convergence(result, title, out_dir / "convergence.png", dpi)
    genome, _ = outputs.best_entry(result)
    solution = [float(v) for v in genome]
    if spec["objective"] == "feature_selection":
        from evosweep.data import read_split

        feature_names = list(read_split(train)[0].columns)
        front = outputs.write_pareto(result, feature_names, out_dir / "pareto.csv")
        outputs.plot_pareto(front, result, title, out_dir / "pareto.png", dpi)
        solution = [n for n, bit in zip(feature_names, genome, strict=True) if bit]
    summary = outputs.best_summary(name, spec, result, solution)
    if spec["objective"] == "feature_selection":
        summary["pareto_size"] = len(result["hall"])
    outputs.write_json(out_dir / "best.json", summary)
    runner_checkpoint_done(checkpoint, log)
    log.info(
        "done: best %s after %d evaluations (%d cache hits) in %.1f s",
        summary["fitness"],
        summary["evaluations"],
        summary["cache_hits"],
        summary["wall_seconds"],
    )
    return summary


def runner_checkpoint_done(checkpoint, log) -> None:
    from evosweep.evolve import checkpoint as checkpoints

    if Path(checkpoint).exists():
        checkpoints.remove(checkpoint)
        log.info("outputs written; removed checkpoint %s", checkpoint)


def run_evolutionary_search(
    name: str,
    spec: dict,
    seed: int,
    workers: int,
    train,
    test,
    out_dir,
    checkpoint,
    log: logging.Logger,
    map_mode: str = "scoop",
) -> dict:
    """A GA over the model's search space, scored with the grid search's folds and scoring."""
    import time
    from types import SimpleNamespace

    import joblib
    import pandas as pd

    from evosweep import search
    from evosweep.data import read_split
    from evosweep.evolve import outputs, problems, runner

    evolution = spec["evolution"]
    problem = {
        "algorithm": "ga",
        "generations": evolution["generations"],
        "population": evolution["population"],
        "crossover": evolution["crossover"],
        "mutation": evolution["mutation"],
        "gene_mutation": evolution.get("gene_mutation"),
        "tournament": evolution["tournament"],
        "checkpoint_every": evolution.get("checkpoint_every", 1),
        "chunksize": None,
    }
    objective = {
        "objective": "hyperparameters",
        "space": spec["space"],
        "train": str(train),
        "estimator": spec["estimator"],
        "params": spec.get("params", {}),
        "cv": spec["cv"],
        "scoring": spec.get("scoring", "accuracy"),
        "seed": seed,
    }
    run = {
        "name": name,
        "problem": problem,
        "objective": objective,
        "seed": seed,
        "inputs": _inputs(train),
        "checkpoint": str(checkpoint),
        "workers": workers,
    }
    started = time.perf_counter()
    log.info("evolutionary search %s: GA over %s, %d worker(s)", name, list(spec["space"]), workers)
    result = runner.launch(run, workers, log, map_mode)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs.write_logbook(result, out_dir / "logbook.csv")

    decoder = problems.HyperParameters.__new__(problems.HyperParameters)
    from evosweep import space as search_space

    decoder.genes = search_space.genes(spec["space"])
    rows = []
    for genome, (mean, std) in result["evaluated"]:
        params = decoder.decode(genome)
        row = {f"param_{k}": v for k, v in params.items()}
        row.update(params=json.dumps(params), mean_test_score=mean, std_test_score=std)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["rank_test_score"] = (
        frame["mean_test_score"].rank(ascending=False, method="min").astype(int)
    )
    frame.to_csv(out_dir / "cv_results.csv", index=False, float_format="%.10g")
    best_genome, _ = outputs.best_entry(result)
    best_params = decoder.decode(best_genome)
    best_row = frame.loc[frame["params"] == json.dumps(best_params)].iloc[0]
    outputs.write_json(out_dir / "best_params.json", best_params)

    features, labels = read_split(train)
    model = problems.import_estimator(spec["estimator"])(
        **{**spec.get("params", {}), **best_params}
    )
    model.fit(features, labels)
    joblib.dump(model, out_dir / "best_model.joblib")
    test_features, test_labels = read_split(test)
    scores = search.test_scores(
        SimpleNamespace(best_estimator_=model), spec, test_features, test_labels
    )
    outputs.write_json(out_dir / "test_scores.json", scores)

    summary = {
        "model": name,
        "strategy": "evolutionary",
        "scoring": spec.get("scoring", "accuracy"),
        "best_score": float(best_row["mean_test_score"]),
        "best_score_std": float(best_row["std_test_score"]),
        "test_score": float(scores[spec.get("scoring", "accuracy")]),
        "n_candidates": int(len(frame)),
        "n_fits": int(len(frame) * spec["cv"]),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "workers": int(result["workers"]),
        "best_params": best_params,
        "evaluations": result["evaluations"],
        "cache_hits": result["cache_hits"],
    }
    outputs.write_json(out_dir / "summary.json", summary)
    runner_checkpoint_done(checkpoint, log)
    log.info(
        "best %s = %.4f +- %.4f with %s from %d candidates (%d fits); test %.4f",
        summary["scoring"],
        summary["best_score"],
        summary["best_score_std"],
        best_params,
        summary["n_candidates"],
        summary["n_fits"],
        summary["test_score"],
    )
    return summary
