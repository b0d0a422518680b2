# Search stage: model lists and input functions (kept apart from the rules, as --lint asks).

SEARCH_MODELS = sorted(config["search"]["models"])
# Searches run on ipyparallel engines (rule search) or, as the evolutionary strategy's, on
# SCOOP workers (rule search_evolutionary).
ENGINE_MODELS = [
    name
    for name in SEARCH_MODELS
    if config["search"]["models"][name]["strategy"] in engine_strategies()
]
SCOOP_MODELS = [name for name in SEARCH_MODELS if name not in ENGINE_MODELS]
SEARCH_FILES = [
    "cv_results.csv",
    "best_params.json",
    "best_model.joblib",
    "test_scores.json",
    "summary.json",
]


def search_model_spec(wildcards):
    """Only this model's own config, so editing another model never reruns this one."""
    return config["search"]["models"][wildcards.model]


def leaderboard_summaries(wildcards):
    return expand("results/search/{model}/summary.json", model=SEARCH_MODELS)


def search_outputs():
    if not SEARCH_MODELS:
        return []
    per_model = expand(
        "results/search/{model}/{file}", model=SEARCH_MODELS, file=SEARCH_FILES
    )
    logbooks = expand("results/search/{model}/logbook.csv", model=SCOOP_MODELS)
    return ["results/leaderboard.csv"] + per_model + logbooks
