# evosweep: parallel hyper-parameter search (ipyparallel) and evolution (DEAP on SCOOP).
# Run: snakemake --cores all (laptop) or snakemake --profile slurm (cluster login node).
from snakemake.utils import min_version

min_version("9.27")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/search.smk"
include: "rules/evolve.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
