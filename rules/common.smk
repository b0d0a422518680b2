# Shared set-up: config validation (one-line errors before any job) and input functions.
import sys
from pathlib import Path

# Make src/ importable even without `pip install -e .` (e.g. inside per-rule conda envs).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from evosweep import config as evosweep_config
from evosweep import data as evosweep_data
from evosweep.errors import EvosweepError


def _check_config():
    """Validate and fill defaults; stop with one clear line on bad config or data."""
    # Checks that read user files or import estimators; each stage adds its own.
    expensive_checks = [
        lambda cfg: evosweep_data.preflight(cfg["datasets"], cfg["seed"]),
        lambda cfg: __import__("evosweep.search").search.check_models(cfg),
        lambda cfg: __import__("evosweep.evolve.stage").evolve.stage.check_config(cfg),
    ]
    try:
        evosweep_config.validate(config)
        user_files = [evosweep_data.source_path(s) for s in config["datasets"].values()]
        evosweep_config.run_checks_once(
            config, expensive_checks, files=[f for f in user_files if f]
        )
    except EvosweepError as error:
        sys.exit(f"evosweep: {error}")


_check_config()

DATASETS = sorted(config["datasets"])


wildcard_constraints:
    dataset="|".join(DATASETS),


def dataset_spec(wildcards):
    """Only the dataset's own config, so editing another dataset never reruns this one."""
    return config["datasets"][wildcards.dataset]


def dataset_source_files(wildcards):
    """A user file behind the dataset, so editing the file reruns its chain."""
    path = evosweep_data.source_path(config["datasets"][wildcards.dataset])
    return [path] if path else []


def data_outputs():
    return expand(
        "results/data/{dataset}/{file}",
        dataset=DATASETS,
        file=["train.parquet", "test.parquet", "summary.json"],
    )


def final_outputs():
    # Each stage's rule file defines its own *_outputs().
    return data_outputs() + search_outputs() + evolve_outputs() + report_outputs()
