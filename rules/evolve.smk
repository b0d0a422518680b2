# Evolution stage (issue 4): DEAP algorithms whose evaluations run on SCOOP workers.
# Checkpoints live in results/checkpoints/ and are NOT outputs, so Snakemake keeps them when a
# job fails or is killed; the rerun resumes from them.


include: "evolve_functions.smk"


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
