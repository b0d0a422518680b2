# Evolution stage: DEAP algorithms whose evaluations run on SCOOP workers.
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
        problem=name_constraint(SINGLE_OBJECTIVE_PROBLEMS),
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
        problem=name_constraint(PARETO_PROBLEMS),
