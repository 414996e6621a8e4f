# One sGDML model per part: full complex, each multi-atom fragment, binding residual.


rule train_model:
    input:
        dataset=f"{RESULTS}/{{system}}/datasets/{{part}}.npz",
        splits=f"{RESULTS}/{{system}}/splits.npz",
        symmetries=symmetry_files,
    output:
        model=f"{RESULTS}/{{system}}/models/{{part}}.npz",
        scores=f"{RESULTS}/{{system}}/models/{{part}}_sigma_scores.csv",
        timing=f"{RESULTS}/{{system}}/models/{{part}}_timing.csv",
    log:
        f"{RESULTS}/logs/{{system}}/train_{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/train_{{part}}.tsv"
    priority: system_priority
    conda:
        ENV
    threads: config["training_threads"]
    resources:
        runtime=240,
        mem_mb=train_mem_mb,
    params:
        config=params_for(
            *setting_paths("training"), "training.parts.{part}", "uncertainty"
        ),
    script:
        "../scripts/train_model.py"


rule delta_model:
    input:
        unpack(delta_part_files),
        binding_dataset=f"{RESULTS}/{{system}}/datasets/binding.npz",
        full_dataset=f"{RESULTS}/{{system}}/datasets/full.npz",
        splits=f"{RESULTS}/{{system}}/splits.npz",
    output:
        model=f"{RESULTS}/{{system}}/models/delta.npz",
    log:
        f"{RESULTS}/logs/{{system}}/delta_model.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/delta_model.tsv"
    conda:
        ENV
    params:
        config=params_for("reference"),
    script:
        "../scripts/delta_model.py"
