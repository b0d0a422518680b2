# Shared set-up: config validation (one-line errors before any job) and input functions.
import sys
from pathlib import Path
from types import SimpleNamespace

# The Snakefile imports evosweep from this checkout even where Snakemake comes from elsewhere
# (a site module); the scripts get it from the venv (`make`) or their conda env (envs/*.yaml).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from evosweep import config as evosweep_config
from evosweep import data as evosweep_data
from evosweep.errors import EvosweepError
from evosweep.runtime.snakemake import take_repeated_sigterms
from evosweep.search.strategies import engine_strategies, search_cv_strategies

# Before Snakemake builds its scheduler, which installs the SIGTERM handler.
take_repeated_sigterms()


def _check_config():
    """Validate and fill defaults; stop with one clear line on bad config or data."""
    # Checks that read user files or import estimators, run once per change of config or files.
    from evosweep.evolve.stage import check_config as check_evolution
    from evosweep.scaling import check_config as check_scaling
    from evosweep.search import check_config as check_search

    def check_data_and_models(cfg):
        # Each model against its dataset's task and columns (text, gaps).
        profiles = evosweep_data.preflight(cfg["datasets"], cfg["seed"])
        check_search(cfg, profiles)

    def user_files(cfg):
        sources = (evosweep_data.source_path(spec) for spec in cfg["datasets"].values())
        return [path for path in sources if path]

    try:
        evosweep_config.checked(
            config,
            [check_data_and_models, check_evolution, check_scaling],
            user_files,
        )
    except EvosweepError as error:
        sys.exit(
            f"evosweep: {evosweep_config.with_fix_hint(error, workflow.configfiles)}"
        )


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


def name_constraint(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(names) or "^$"


def split_files(dataset):
    return {
        "train": f"results/data/{dataset}/train.parquet",
        "test": f"results/data/{dataset}/test.parquet",
    }


def model_split_files(wildcards):
    """The train and test split of a search model's dataset."""
    return split_files(config["search"]["models"][wildcards.model]["dataset"])


def final_outputs():
    # Each stage's rule file defines its own *_outputs().
    return (
        data_outputs()
        + search_outputs()
        + evolve_outputs()
        + report_outputs()
        + scaling_outputs()
    )


def job_benchmarks(wildcards):
    """Benchmark files of every job of the default target except this stage's own."""
    files = expand("benchmarks/data/{dataset}.tsv", dataset=DATASETS)
    files += expand(
        "benchmarks/search/{model}.tsv", model=sorted(config["search"]["models"])
    )
    files += expand(
        "benchmarks/evolve/{problem}.tsv", problem=sorted(config["evolve"]["problems"])
    )
    return files


def report_outputs():
    return ["results/resources/resources.csv", "results/resources/resources.png"]


# Scaling study (rules/scaling.smk): one search model and one evolution problem, rerun at
# each worker count of report.scaling, in one job per stage.
def _first(names, wanted):
    return wanted if wanted is not None else (names[0] if names else None)


SCALING_MODEL = _first(
    sorted(
        name
        for name, spec in config["search"]["models"].items()
        if spec["strategy"] in search_cv_strategies()
    ),
    config["report"]["scaling_model"],
)
SCALING_PROBLEM = _first(
    sorted(config["evolve"]["problems"]), config["report"]["scaling_problem"]
)
SCALING_STAGES = [
    stage
    for stage, name in (("search", SCALING_MODEL), ("evolve", SCALING_PROBLEM))
    if name is not None
]


def scaling_search_inputs(wildcards):
    """The training split only: the study times fits, it scores nothing on the test set."""
    dataset = config["search"]["models"][SCALING_MODEL]["dataset"]
    return {"train": split_files(dataset)["train"]}


def scaling_evolve_inputs(wildcards):
    return evolve_problem_inputs(SimpleNamespace(problem=SCALING_PROBLEM))


SCALING_MAX_WORKERS = max(config["report"]["scaling"])


def scaling_timings(wildcards):
    return expand("results/scaling/{stage}.json", stage=SCALING_STAGES)


def scaling_outputs():
    if not SCALING_STAGES or not config["report"]["scaling_in_default"]:
        return []
    return ["results/scaling/scaling.csv", "results/scaling/speedup.png"]
