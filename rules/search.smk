# Search stage (issue 3): one scikit-learn search per model on its own ipyparallel engines.


include: "search_functions.smk"


rule search:
    input:
        unpack(search_dataset_files),
    output:
        cv_results=report(
            "results/search/{model}/cv_results.csv",
            caption="../report/search_cv_results.rst",
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
        plots=report(
            directory("results/search/{model}/plots"),
            patterns=["{name}.png"],
            caption="../report/search_plots.rst",
            category="Search",
            subcategory="{model}",
        ),
    log:
        "logs/search/{model}.log",
    benchmark:
        "benchmarks/search/{model}.tsv"
    wildcard_constraints:
        model="|".join(SEARCH_RULE_MODELS) or "^$",
    conda:
        "../envs/search.yaml"
    threads: workflow.cores
    params:
        spec=search_model_spec,
        seed=config["seed"],
        engines=config["search"]["engines"],
    script:
        "../scripts/search.py"


rule leaderboard:
    input:
        leaderboard_summaries,
    output:
        report(
            "results/leaderboard.csv",
            caption="../report/leaderboard.rst",
            category="Leaderboard",
        ),
    log:
        "logs/search/leaderboard.log",
    benchmark:
        "benchmarks/search/leaderboard.tsv"
    conda:
        "../envs/search.yaml"
    script:
        "../scripts/leaderboard.py"
