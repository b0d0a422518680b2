# Evolution stage: problem lists and input functions (kept apart from the rules, as --lint asks).

EVOLVE_PROBLEMS = sorted(config["evolve"]["problems"])
# Multi-objective problems also write a Pareto front (rule evolve_pareto).
PARETO_PROBLEMS = [
    name
    for name in EVOLVE_PROBLEMS
    if config["evolve"]["problems"][name]["objective"] == "feature_selection"
]
SINGLE_OBJECTIVE_PROBLEMS = [p for p in EVOLVE_PROBLEMS if p not in PARETO_PROBLEMS]


def evolve_problem_spec(wildcards):
    """Only this problem's config, so editing another problem never reruns this one."""
    return config["evolve"]["problems"][wildcards.problem]


def evolve_scoring_model(wildcards):
    """What feature selection reads of its search model (None for benchmark functions);
    its space is left out: the search's result arrives as best_params.json."""
    model = evolve_problem_spec(wildcards)["model"]
    if model is None:
        return None
    spec = config["search"]["models"][model]
    keys = ("dataset", "estimator", "params", "scoring", "preprocess")
    return {key: spec[key] for key in keys if key in spec}


def evolve_problem_inputs(wildcards):
    model = evolve_problem_spec(wildcards)["model"]
    if model is None:
        return {}
    return {
        "train": split_files(config["search"]["models"][model]["dataset"])["train"],
        "best_params": f"results/search/{model}/best_params.json",
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
    return files
