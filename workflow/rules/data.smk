# Reference data: MD sampling replicas, frame selection, chunked labelling (or ingestion), Δ datasets, splits.


rule sample_replica:
    input:
        structure=structure_files,
    output:
        trajectory=f"{RESULTS}/{{system}}/data/replicas/replica_{{replica}}.npz",
        frames=f"{RESULTS}/{{system}}/data/replicas/replica_{{replica}}.extxyz",
    log:
        f"{RESULTS}/logs/{{system}}/sample_replica_{{replica}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/sample_replica_{{replica}}.tsv"
    priority: system_priority
    conda:
        ENV
    threads: 1
    resources:
        runtime=120,
    params:
        # not sampling.selection: it chooses among the replicas' frames afterwards
        config=params_for(
            "seed", "reference", *setting_paths("sampling", ("selection",))
        ),
    script:
        "../scripts/sample_replica.py"


rule select_frames:
    input:
        replicas=replica_files,
    output:
        trajectory=f"{RESULTS}/{{system}}/data/trajectory.npz",
        table=f"{RESULTS}/{{system}}/data/labelled_frames.csv",
        png=report(
            f"{RESULTS}/{{system}}/data/sampling_coverage.png",
            caption="../report/sampling_coverage.rst",
            category="Data",
            subcategory="Sampling coverage",
            labels={"system": "{system}"},
        ),
        pdf=f"{RESULTS}/{{system}}/data/sampling_coverage.pdf",
    log:
        f"{RESULTS}/logs/{{system}}/select_frames.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/select_frames.tsv"
    priority: system_priority
    conda:
        ENV
    params:
        config=params_for("seed", "reference", "sampling"),
        cv=selection_cv,
    script:
        "../scripts/select_frames.py"


rule label_chunk:
    input:
        trajectory=f"{RESULTS}/{{system}}/data/trajectory.npz",
    output:
        labels=temp(f"{RESULTS}/{{system}}/data/labels/chunk_{{chunk}}.npz"),
    log:
        f"{RESULTS}/logs/{{system}}/label_chunk_{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/label_chunk_{{chunk}}.tsv"
    priority: system_priority
    conda:
        ENV
    threads: 1
    resources:
        runtime=120,
    params:
        config=params_for("reference"),
        n_chunks=config["labelling"]["n_chunks"],
    script:
        "../scripts/label_chunk.py"


rule merge_labels:
    input:
        chunks=label_chunks,
    output:
        labels=f"{RESULTS}/{{system}}/data/labels.npz",
        frames=f"{RESULTS}/{{system}}/data/labelled_frames.extxyz",
    log:
        f"{RESULTS}/logs/{{system}}/merge_labels.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/merge_labels.tsv"
    priority: system_priority
    conda:
        ENV
    script:
        "../scripts/merge_labels.py"


rule ingest_dataset:
    input:
        user_data_files,
    output:
        labels=f"{RESULTS}/{{system}}/data/ingested_labels.npz",
    log:
        f"{RESULTS}/logs/{{system}}/ingest_dataset.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/ingest_dataset.tsv"
    priority: system_priority
    conda:
        ENV
    threads: 1
    params:
        config=params_for("reference"),
    script:
        "../scripts/ingest_dataset.py"


rule delta_dataset:
    input:
        labels=labels_input,
    output:
        dataset=f"{RESULTS}/{{system}}/datasets/{{dataset}}.npz",
    log:
        f"{RESULTS}/logs/{{system}}/delta_dataset_{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/delta_dataset_{{dataset}}.tsv"
    priority: system_priority
    conda:
        ENV
    params:
        config=params_for("reference"),
    script:
        "../scripts/delta_dataset.py"


rule split:
    input:
        full=f"{RESULTS}/{{system}}/datasets/full.npz",
    output:
        splits=f"{RESULTS}/{{system}}/splits.npz",
    log:
        f"{RESULTS}/logs/{{system}}/split.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/split.tsv"
    priority: system_priority
    conda:
        ENV
    params:
        config=params_for(
            "seed",
            "training.n_train",
            "training.n_valid",
            "training.n_test",
            "training.parts.*.n_train",
        ),
    script:
        "../scripts/split.py"
