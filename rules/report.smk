# Report stage: resources per job (from every rule's benchmark file) for the HTML report.


def job_benchmarks(wildcards):
    """Benchmark files of every job of the default target except this stage's own."""
    files = expand("benchmarks/data/{dataset}.tsv", dataset=DATASETS)
    files += expand(
        "benchmarks/search/{model}.tsv", model=sorted(config["search"]["models"])
    )
    files += expand(
        "benchmarks/evolve/{problem}.tsv", problem=sorted(config["evolve"]["problems"])
    )
    return files


rule resources_table:
    input:
        job_benchmarks,
    output:
        table=report(
            "results/resources/resources.csv",
            caption="../report/resources_table.rst",
            category="Resources",
        ),
        figure=report(
            "results/resources/resources.png",
            caption="../report/resources_figure.rst",
            category="Resources",
        ),
    log:
        "logs/report/resources_table.log",
    benchmark:
        "benchmarks/report/resources_table.tsv"
    conda:
        "../envs/report.yaml"
    params:
        dpi=config["report"]["dpi"],
    script:
        "../scripts/resources_table.py"


def report_outputs():
    return ["results/resources/resources.csv", "results/resources/resources.png"]
