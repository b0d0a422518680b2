"""The evolution stage as the rules see it: config checks, and one problem's run and outputs.

Imported by the Snakefile for its config checks, so the module level imports nothing heavy.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from evosweep import journal
from evosweep.errors import ConfigError
from evosweep.evolve.spec import CONTINUOUS_OBJECTIVES
from evosweep.models import Model

log = logging.getLogger(__name__)


def _fail(where: str, message: str):
    raise ConfigError(where, message)


def check_problem(name: str, spec: dict, search_models: dict) -> None:
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
        # The model's existence is checked by evosweep.config, the model itself by the search.
        if scoring_model(spec, search_models[spec["model"]]).is_clusterer:
            _fail(
                f"{where}.model",
                f"feature selection needs a supervised model to score subsets; "
                f"{spec['model']!r} is a clustering model",
            )


def check_config(config: dict) -> None:
    """All evolution checks, before any job."""
    search_models = config["search"]["models"]
    for name, spec in config["evolve"]["problems"].items():
        check_problem(name, spec, search_models)


def scoring_model(problem: dict, entry: dict | None) -> Model | None:
    """The search model (its `search.models` entry, or the part of it the rule passes) that
    scores a problem's candidates; None for a benchmark function."""
    return None if entry is None else Model.from_config(problem["model"], entry)


# --------------------------------------------------------------------------- runs


def load_best_params(path) -> dict:
    return json.loads(Path(path).read_text())


def run_problem(
    name: str,
    spec: dict,
    seed: int,
    workers: int,
    out_dir,
    checkpoint,
    model: Model | None = None,
    best_params_path=None,
    train=None,
    dpi: int = 110,
    map_mode: str = "scoop",
) -> dict:
    """Run one `evolve.problems` entry and write its outputs into `out_dir`."""
    from evosweep.evolve import outputs
    from evosweep.evolve.launch import launch
    from evosweep.evolve.spec import build_run

    best_params = load_best_params(best_params_path) if best_params_path else None
    run = build_run(
        name, spec, seed, workers, checkpoint, model=model, best_params=best_params, train=train
    )
    log.info(
        "problem %s: %s on %s, %d worker(s)", name, spec["algorithm"], spec["objective"], workers
    )
    result = launch(run, map_mode)
    out_dir = Path(out_dir)
    outputs.write_logbook(result, out_dir / "logbook.csv")
    title = f"{name}: {spec['algorithm']} on {spec['objective']}"
    outputs.plot_convergence(result, title, out_dir / "convergence.png", dpi)
    genome, _ = result.best()
    solution = [float(v) for v in genome]
    summary_extra = {}
    if spec["objective"] == "feature_selection":
        from evosweep.data import read_split

        feature_names = list(read_split(train)[0].columns)
        front = outputs.write_pareto(result, feature_names, out_dir / "pareto.csv")
        outputs.plot_pareto(front, result, title, out_dir / "pareto.png", dpi)
        solution = [n for n, bit in zip(feature_names, genome, strict=True) if bit]
        summary_extra["pareto_size"] = len(result.hall)
    summary = outputs.best_summary(name, spec, result, solution) | summary_extra
    outputs.write_json(out_dir / "best.json", summary)
    journal.remove_resume_point(checkpoint)
    log.info(
        "done: best %s after %d evaluations (%d cache hits) in %.1f s",
        summary["fitness"],
        summary["evaluations"],
        summary["cache_hits"],
        summary["wall_seconds"],
    )
    return summary
