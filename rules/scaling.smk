# Scaling study: `snakemake scaling` (also part of the default target while
# report.scaling_in_default is true). Each timing job takes every local core, so runs never
# overlap and distort each other's wall time; on Slurm it asks for `workers` tasks.


rule scaling_search:
    input:
        unpack(scaling_search_inputs),
    output:
        "results/scaling/search/{workers}.json",
    log:
        "logs/scaling/search_{workers}.log",
    benchmark:
        "benchmarks/scaling/search_{workers}.tsv"
    wildcard_constraints:
        workers=r"\d+",
    conda:
        "../envs/search.yaml"
    threads: workflow.cores
    resources:
        tasks=lambda wildcards: int(wildcards.workers),
        # On Slurm one node per worker: the study then also measures workers spread over nodes.
        nodes=lambda wildcards: int(wildcards.workers),
        # On Slurm, several workers run as srun steps from the batch step (the `mpi` resource);
        # the executor plugin refuses `mpi` with one task, which then runs as a plain job.
        mpi=lambda wildcards: "srun" if int(wildcards.workers) > 1 else "",
    params:
        model=SCALING_MODEL,
        spec=lambda wildcards: config["search"]["models"][SCALING_MODEL],
        seed=config["seed"],
        repeats=config["report"]["scaling_repeats"],
    script:
        "../scripts/scaling_search.py"


rule scaling_evolve:
    input:
        unpack(scaling_evolve_inputs),
    output:
        "results/scaling/evolve/{workers}.json",
    log:
        "logs/scaling/evolve_{workers}.log",
    benchmark:
        "benchmarks/scaling/evolve_{workers}.tsv"
    wildcard_constraints:
        workers=r"\d+",
    conda:
        "../envs/evolve.yaml"
    threads: workflow.cores
    resources:
        tasks=lambda wildcards: int(wildcards.workers),
        # On Slurm one node per worker: the study then also measures workers spread over nodes.
        nodes=lambda wildcards: int(wildcards.workers),
        # On Slurm, several workers run as srun steps from the batch step (the `mpi` resource);
        # the executor plugin refuses `mpi` with one task, which then runs as a plain job.
        mpi=lambda wildcards: "srun" if int(wildcards.workers) > 1 else "",
    params:
        problem=SCALING_PROBLEM,
        spec=lambda wildcards: config["evolve"]["problems"][SCALING_PROBLEM],
        model=lambda wildcards: evolve_scoring_model(
            SimpleNamespace(problem=SCALING_PROBLEM)
        ),
        seed=config["seed"],
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
