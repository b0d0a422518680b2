# Report stage: resources per job (from every rule's benchmark file) for the HTML report.


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
