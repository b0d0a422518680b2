# Evolution stage (issue 4): DEAP algorithms whose evaluations run on SCOOP workers.
# Checkpoints live in results/checkpoints/ and are NOT outputs, so Snakemake keeps them when a
# job fails or is killed; the rerun resumes from them.
from evosweep.evolve import stage as evolve_stage

EVOLVE_PROBLEMS = sorted(config["evolve"]["problems"])
# Multi-objective problems also write a Pareto front (rule evolve_pareto).
PARETO_PROBLEMS = [
    name
    for name in EVOLVE_PROBLEMS
    if config["evolve"]["problems"][name]["objective"] == "feature_selection"
]
SINGLE_OBJECTIVE_PROBLEMS = [p for p in EVOLVE_PROBLEMS if p not in PARETO_PROBLEMS]
EVOLUTIONARY_MODELS = sorted(
    name
    for name, spec in config["search"]["models"].items()
    if spec.get("strategy") == "evolutionary"
)


def _constraint(names):
    return "|".join(names) or "^$"


def evolve_problem_spec(wildcards):
    """Only this problem's config, so editing another problem never reruns this one."""
    return evosweep_config.select(config, "evolve", "problems", wildcards.problem)


def evolve_scoring_model(wildcards):
    """The search model that scores feature subsets (None for benchmark functions)."""
    model = evolve_problem_spec(wildcards).get("model")
    return config["search"]["models"][model] if model else None


def evolve_problem_inputs(wildcards):
    model = evolve_problem_spec(wildcards).get("model")
    if model is None:
        return {}
    dataset = config["search"]["models"][model]["dataset"]
    return {
        "train": f"results/data/{dataset}/train.parquet",
        "best_params": f"results/search/{model}/best_params.json",
    }


def evolutionary_model_spec(wildcards):
    return evosweep_config.select(config, "search", "models", wildcards.model)


def evolutionary_dataset_files(wildcards):
    dataset = config["search"]["models"][wildcards.model]["dataset"]
    return {
        "train": f"results/data/{dataset}/train.parquet",
        "test": f"results/data/{dataset}/test.parquet",
    }


def evolve_outputs():
    files = expand(
        "results/evolve/{problem}/{file}",
        problem=EVOLVE_PROBLEMS,
        file=["logbook.csv", "best.json", "convergence.png"],
    )
    files += expand(
        "results/evolve/{problem}/{file}",
        problem=PARETO_PROBLEMS,
        file=["pareto.csv", "pareto.png"],
    )
    files += expand("results/search/{model}/logbook.csv", model=EVOLUTIONARY_MODELS)
    return files


rule evolve:
    input:
        unpack(evolve_problem_inputs),
    output:
        logbook=report(
            "results/evolve/{problem}/logbook.csv",
            caption="../report/evolve_logbook.rst",
            category="Evolution",
            subcategory="{problem}",
        ),
        best=report(
            "results/evolve/{problem}/best.json",
            caption="../report/evolve_best.rst",
            category="Evolution",
            subcategory="{problem}",
        ),
        convergence=report(
            "results/evolve/{problem}/convergence.png",
            caption="../report/evolve_convergence.rst",
            category="Evolution",
            subcategory="{problem}",
        ),
    log:
        "logs/evolve/{problem}.log",
    benchmark:
        "benchmarks/evolve/{problem}.tsv"
    wildcard_constraints:
        problem=_constraint(SINGLE_OBJECTIVE_PROBLEMS),
    conda:
        "../envs/evolve.yaml"
    threads: workflow.cores
    params:
        spec=evolve_problem_spec,
        model=evolve_scoring_model,
        seed=config["seed"],
        workers=config["evolve"]["workers"],
        dpi=config["report"]["dpi"],
        checkpoint="results/checkpoints/evolve/{problem}.pkl",
    script:
        "../scripts/evolve.py"


use rule evolve as evolve_pareto with:
    output:
        logbook=report(
            "results/evolve/{problem}/logbook.csv",
            caption="../report/evolve_logbook.rst",
            category="Evolution",
            subcategory="{problem}",
        ),
        best=report(
            "results/evolve/{problem}/best.json",
            caption="../report/evolve_best.rst",
            category="Evolution",
            subcategory="{problem}",
        ),
        convergence=report(
            "results/evolve/{problem}/convergence.png",
            caption="../report/evolve_convergence.rst",
            category="Evolution",
            subcategory="{problem}",
        ),
        pareto=report(
            "results/evolve/{problem}/pareto.csv",
            caption="../report/evolve_pareto.rst",
            category="Evolution",
            subcategory="{problem}",
        ),
        pareto_plot=report(
            "results/evolve/{problem}/pareto.png",
            caption="../report/evolve_pareto.rst",
            category="Evolution",
            subcategory="{problem}",
        ),
    wildcard_constraints:
        problem=_constraint(PARETO_PROBLEMS),


rule search_evolutionary:
    input:
        unpack(evolutionary_dataset_files),
    output:
        cv_results=report(
            "results/search/{model}/cv_results.csv",
            caption="../report/search_evolutionary.rst",
            category="Search",
            subcategory="{model}",
        ),
        best_params="results/search/{model}/best_params.json",
        best_model="results/search/{model}/best_model.joblib",
        test_scores=report(
            "results/search/{model}/test_scores.json",
            caption="../report/search_test_scores.rst",
            category="Search",
            subcategory="{model}",
        ),
        summary="results/search/{model}/summary.json",
        logbook=report(
            "results/search/{model}/logbook.csv",
            caption="../report/search_evolutionary.rst",
            category="Evolution",
            subcategory="{model}",
        ),
    log:
        "logs/search/{model}.log",
    benchmark:
        "benchmarks/search/{model}.tsv"
    wildcard_constraints:
        model=_constraint(EVOLUTIONARY_MODELS),
    conda:
        "../envs/evolve.yaml"
    threads: workflow.cores
    params:
        spec=evolutionary_model_spec,
        seed=config["seed"],
        workers=config["evolve"]["workers"],
        checkpoint="results/checkpoints/search/{model}.pkl",
    script:
        "../scripts/search_evolutionary.py"
