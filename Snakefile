# evosweep: parallel hyper-parameter search (ipyparallel) and evolution (DEAP on SCOOP).
# Run: snakemake --cores all (laptop) or snakemake --profile slurm (cluster login node).
from snakemake.utils import min_version

min_version("9.27")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/search.smk"
include: "rules/evolve.smk"
include: "rules/report.smk"
include: "rules/scaling.smk"


# Tables from small files run on the login node under --profile slurm, not as Slurm jobs.
localrules:
    leaderboard,
    resources_table,
    scaling_table,


rule all:
    default_target: True
    input:
        final_outputs(),
