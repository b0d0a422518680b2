rule prepare_data:
    input:
        dataset_source_files,
    output:
        train="results/data/{dataset}/train.parquet",
        test="results/data/{dataset}/test.parquet",
        summary=report(
            "results/data/{dataset}/summary.json",
            caption="../report/data_summary.rst",
            category="Data",
            labels={"dataset": "{dataset}"},
        ),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    conda:
        "../envs/data.yaml"
    params:
        spec=dataset_spec,
        seed=config["seed"],
    script:
        "../scripts/prepare_data.py"
