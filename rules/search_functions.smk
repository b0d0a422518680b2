# Search stage: model lists and input functions (kept apart from the rules, as --lint asks).
from evosweep import config as evosweep_config

SEARCH_MODELS = sorted(config["search"]["models"])
# Models of the search job; evolutionary ones (strategy evolutionary) belong to rules/evolve.smk.
SEARCH_RULE_MODELS = [
    name
    for name in SEARCH_MODELS
    if config["search"]["models"][name].get("strategy", "grid") != "evolutionary"
]
SEARCH_FILES = [
    "cv_results.csv",
    "best_params.json",
    "best_model.joblib",
    "test_scores.json",
    "summary.json",
]


def search_model_spec(wildcards):
    """Only this model's own config, so editing another model never reruns this one."""
    return evosweep_config.select(config, "search", "models", wildcards.model)


def search_dataset_files(wildcards):
    dataset = config["search"]["models"][wildcards.model]["dataset"]
    return {
        "train": f"results/data/{dataset}/train.parquet",
        "test": f"results/data/{dataset}/test.parquet",
    }


def leaderboard_models():
    """Every model whose outputs some job makes; evolutionary ones once
    rules/evolve.smk defines search_evolutionary."""
    has_evolutionary_rule = any(
        defined.name == "search_evolutionary" for defined in workflow.rules
    )
    return [
        name
        for name in SEARCH_MODELS
        if name in SEARCH_RULE_MODELS or has_evolutionary_rule
    ]


def leaderboard_summaries(wildcards):
    return expand("results/search/{model}/summary.json", model=leaderboard_models())


def search_outputs():
    models = leaderboard_models()
    if not models:
        return []
    per_model = expand("results/search/{model}/{file}", model=models, file=SEARCH_FILES)
    return ["results/leaderboard.csv"] + per_model
