# Search stage: one hyper-parameter search per model, so an edit to one model reruns only it.


include: "search_functions.smk"


rule search:
    input:
        unpack(model_split_files),
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
        model=name_constraint(ENGINE_MODELS),
    conda:
        "../envs/search.yaml"
    threads: workflow.cores
    params:
        spec=search_model_spec,
        seed=config["seed"],
        workers=config["search"]["engines"],
        # Not an output: the journal of finished fits beside it ({model}.journal) outlives a
        # killed or timed-out job, and the rerun resumes from it.
        checkpoint="results/checkpoints/search/{model}.pkl",
    script:
        "../scripts/search.py"


# The evolutionary strategy: a GA over the space on SCOOP workers; its checkpoint is not an
# output, so Snakemake keeps it when the job fails or is killed and the rerun resumes from it.
use rule search as search_evolutionary with:
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
        plots=report(
            directory("results/search/{model}/plots"),
            patterns=["{name}.png"],
            caption="../report/search_plots.rst",
            category="Search",
            subcategory="{model}",
        ),
    wildcard_constraints:
        model=name_constraint(SCOOP_MODELS),
    conda:
        "../envs/evolve.yaml"
    params:
        spec=search_model_spec,
        seed=config["seed"],
        workers=config["evolve"]["workers"],
        checkpoint="results/checkpoints/search/{model}.pkl",


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
