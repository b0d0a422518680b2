# Search stage: model lists and input functions (kept apart from the rules, as --lint asks).

SEARCH_MODELS = sorted(config["search"]["models"])
# The evolutionary strategy runs on SCOOP workers (rule search_evolutionary), the others on
# ipyparallel engines (rule search).
EVOLUTIONARY_MODELS = [
    name
    for name in SEARCH_MODELS
    if config["search"]["models"][name]["strategy"] == "evolutionary"
]
ENGINE_MODELS = [name for name in SEARCH_MODELS if name not in EVOLUTIONARY_MODELS]
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
    logbooks = expand("results/search/{model}/logbook.csv", model=EVOLUTIONARY_MODELS)
    return ["results/leaderboard.csv"] + per_model + logbooks
