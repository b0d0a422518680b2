# Scaling study: `snakemake scaling` (also part of the default target while
# report.scaling_in_default is true). One job per stage times every worker count, the counts
# alternating round by round, so a shared machine's slow spells hit them alike. Each job takes
# every local core, so timings never overlap other jobs; on Slurm it asks for as many tasks,
# on as many nodes, as the largest count, and each run uses as many of them as it has workers.


rule scaling_search:
    input:
        unpack(scaling_search_inputs),
    output:
        "results/scaling/search.json",
    log:
        "logs/scaling/search.log",
    benchmark:
        "benchmarks/scaling/search.tsv"
    conda:
        "../envs/search.yaml"
    threads: workflow.cores
    resources:
        tasks=SCALING_MAX_WORKERS,
        # On Slurm one node per worker: the study then also measures workers spread over nodes.
        nodes=SCALING_MAX_WORKERS,
        # On Slurm, several workers run as srun steps from the batch step (the `mpi` resource);
        # the executor plugin refuses `mpi` with one task, which then runs as a plain job.
        mpi="srun" if SCALING_MAX_WORKERS > 1 else "",
    params:
        model=SCALING_MODEL,
        spec=config["search"]["models"].get(SCALING_MODEL),
        seed=config["seed"],
        counts=config["report"]["scaling"],
        repeats=config["report"]["scaling_repeats"],
    script:
        "../scripts/scaling_search.py"


rule scaling_evolve:
    input:
        unpack(scaling_evolve_inputs),
    output:
        "results/scaling/evolve.json",
    log:
        "logs/scaling/evolve.log",
    benchmark:
        "benchmarks/scaling/evolve.tsv"
    conda:
        "../envs/evolve.yaml"
    threads: workflow.cores
    resources:
        tasks=SCALING_MAX_WORKERS,
        nodes=SCALING_MAX_WORKERS,
        mpi="srun" if SCALING_MAX_WORKERS > 1 else "",
    params:
        problem=SCALING_PROBLEM,
        spec=config["evolve"]["problems"].get(SCALING_PROBLEM),
        model=lambda wildcards: evolve_scoring_model(
            SimpleNamespace(problem=SCALING_PROBLEM)
        ),
        seed=config["seed"],
        counts=config["report"]["scaling"],
        repeats=config["report"]["scaling_repeats"],
    script:
        "../scripts/scaling_evolve.py"


rule scaling_table:
    input:
        scaling_timings,
    output:
        table=report(
            "results/scaling/scaling.csv",
            caption="../report/scaling_table.rst",
            category="Scaling",
        ),
        figure=report(
            "results/scaling/speedup.png",
            caption="../report/scaling_figure.rst",
            category="Scaling",
        ),
    log:
        "logs/scaling/scaling_table.log",
    benchmark:
        "benchmarks/scaling/scaling_table.tsv"
    conda:
        "../envs/report.yaml"
    params:
        dpi=config["report"]["dpi"],
    script:
        "../scripts/scaling_table.py"


rule scaling:
    default_target: False
    input:
        "results/scaling/scaling.csv",
        "results/scaling/speedup.png",
