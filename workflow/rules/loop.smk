# Active learning: rounds that label where the Δ model's own MD leaves its data.
# Round r explores with the models of round r − 1 (round 0: the pipeline's); a checkpoint
# per round decides whether it labels and retrains, or the loop ends.


rule loop_explore:
    input:
        unpack(loop_previous),
    output:
        runs=f"{RESULTS}/{{system}}/loop/round_{{round}}/explore/{{temperature}}K.npz",
    log:
        f"{RESULTS}/logs/{{system}}/loop_{{round}}_explore_{{temperature}}K.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/loop_{{round}}_explore_{{temperature}}K.tsv"
    conda:
        ENV
    threads: 1
    resources:
        runtime=240,
    params:
        config=params_for("seed", "active_learning", "dynamics.stability"),
    script:
        "../scripts/loop_explore.py"


checkpoint loop_select:
    input:
        runs=lambda w: explore_files(w.system, w.round),
    output:
        selected=f"{RESULTS}/{{system}}/loop/round_{{round}}/selected.npz",
        decision=f"{RESULTS}/{{system}}/loop/round_{{round}}/decision.json",
        frames=f"{RESULTS}/{{system}}/loop/round_{{round}}/selected.extxyz",
    log:
        f"{RESULTS}/logs/{{system}}/loop_{{round}}_select.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/loop_{{round}}_select.tsv"
    conda:
        ENV
    params:
        config=params_for("active_learning"),
    script:
        "../scripts/loop_select.py"


rule loop_label:
    input:
        selected=rules.loop_select.output.selected,
    output:
        labels=f"{RESULTS}/{{system}}/loop/round_{{round}}/new_labels.npz",
    log:
        f"{RESULTS}/logs/{{system}}/loop_{{round}}_label.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/loop_{{round}}_label.tsv"
    conda:
        ENV
    threads: 1
    resources:
        runtime=240,
    params:
        config=params_for("reference"),
    script:
        "../scripts/loop_label.py"


rule loop_pool:
    input:
        new_labels=rules.loop_label.output.labels,
        selected=rules.loop_select.output.selected,
        previous_labels=lambda w: round_labels(w.system, int(w.round) - 1),
        previous_splits=lambda w: f"{round_dir(w.system, int(w.round) - 1)}/splits.npz",
    output:
        labels=f"{RESULTS}/{{system}}/loop/round_{{round}}/labels.npz",
        splits=f"{RESULTS}/{{system}}/loop/round_{{round}}/splits.npz",
    log:
        f"{RESULTS}/logs/{{system}}/loop_{{round}}_pool.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/loop_{{round}}_pool.tsv"
    conda:
        ENV
    script:
        "../scripts/loop_pool.py"


rule loop_dataset:
    input:
        labels=rules.loop_pool.output.labels,
    output:
        dataset=f"{RESULTS}/{{system}}/loop/round_{{round}}/datasets/{{dataset}}.npz",
    log:
        f"{RESULTS}/logs/{{system}}/loop_{{round}}_dataset_{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/loop_{{round}}_dataset_{{dataset}}.tsv"
    conda:
        ENV
    params:
        config=params_for("reference"),
    script:
        "../scripts/delta_dataset.py"


rule loop_train:
    input:
        dataset=f"{RESULTS}/{{system}}/loop/round_{{round}}/datasets/{{part}}.npz",
        splits=rules.loop_pool.output.splits,
        previous_model=lambda w: f"{round_dir(w.system, int(w.round) - 1)}/models/{w.part}.npz",
        previous_scores=lambda w: (
            f"{round_dir(w.system, int(w.round) - 1)}/models/{w.part}_sigma_scores.csv"
        ),
        previous_splits=lambda w: f"{round_dir(w.system, int(w.round) - 1)}/splits.npz",
        symmetries=symmetry_files,
    output:
        model=f"{RESULTS}/{{system}}/loop/round_{{round}}/models/{{part}}.npz",
        scores=f"{RESULTS}/{{system}}/loop/round_{{round}}/models/{{part}}_sigma_scores.csv",
        timing=f"{RESULTS}/{{system}}/loop/round_{{round}}/models/{{part}}_timing.csv",
    log:
        f"{RESULTS}/logs/{{system}}/loop_{{round}}_train_{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/loop_{{round}}_train_{{part}}.tsv"
    conda:
        ENV
    threads: config["training_threads"]
    resources:
        runtime=240,
        mem_mb=loop_train_mem_mb,
    params:
        config=params_for(
            *setting_paths("training"), "training.parts.{part}", "uncertainty"
        ),
    script:
        "../scripts/loop_train.py"


rule loop_delta_model:
    input:
        unpack(
            lambda w: {
                f"model_{part}": f"{RESULTS}/{w.system}/loop/round_{w.round}/models/{part}.npz"
                for part in model_parts(SYSTEMS[w.system])
                if part != "full"
            }
        ),
        binding_dataset=f"{RESULTS}/{{system}}/loop/round_{{round}}/datasets/binding.npz",
        full_dataset=f"{RESULTS}/{{system}}/loop/round_{{round}}/datasets/full.npz",
        splits=rules.loop_pool.output.splits,
    output:
        model=f"{RESULTS}/{{system}}/loop/round_{{round}}/models/delta.npz",
    log:
        f"{RESULTS}/logs/{{system}}/loop_{{round}}_delta_model.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/loop_{{round}}_delta_model.tsv"
    conda:
        ENV
    params:
        config=params_for("reference"),
    script:
        "../scripts/delta_model.py"


rule loop_final_full:
    input:
        dataset=final_file("datasets/full.npz"),
        splits=final_file("splits.npz"),
        previous_model=f"{RESULTS}/{{system}}/models/full.npz",
        previous_scores=f"{RESULTS}/{{system}}/models/full_sigma_scores.csv",
        previous_splits=f"{RESULTS}/{{system}}/splits.npz",
        symmetries=symmetry_files,
    output:
        model=f"{RESULTS}/{{system}}/loop/final/full.npz",
        scores=f"{RESULTS}/{{system}}/loop/final/full_sigma_scores.csv",
        timing=f"{RESULTS}/{{system}}/loop/final/full_timing.csv",
    log:
        f"{RESULTS}/logs/{{system}}/loop_final_full.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/loop_final_full.tsv"
    conda:
        ENV
    threads: config["training_threads"]
    resources:
        runtime=240,
        mem_mb=loop_train_mem_mb,
    params:
        config=params_for(
            *setting_paths("training"), "training.parts.full", "uncertainty"
        ),
        part="full",
    script:
        "../scripts/loop_train.py"


rule loop_final_delta:
    input:
        model=final_file("models/delta.npz"),
    output:
        model=f"{RESULTS}/{{system}}/loop/final/delta.npz",
    log:
        f"{RESULTS}/logs/{{system}}/loop_final_delta.log",
    conda:
        ENV
    shell:
        "cp {input.model} {output.model} 2> {log}"


rule loop_summary:
    input:
        unpack(loop_summary_inputs),
    output:
        table=f"{RESULTS}/{{system}}/loop/rounds.csv",
        png=report(
            f"{RESULTS}/{{system}}/loop/rounds.png",
            caption="../report/loop_rounds.rst",
            category="Active learning",
            subcategory="{system}",
        ),
        pdf=f"{RESULTS}/{{system}}/loop/rounds.pdf",
    log:
        f"{RESULTS}/logs/{{system}}/loop_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/loop_summary.tsv"
    conda:
        ENV
    params:
        label=system_label,
        n_temperatures=lambda w: len(loop_temperatures(w.system)),
    script:
        "../scripts/loop_summary.py"


rule md_test_frames:
    input:
        runs=md_delta_runs,
    output:
        frames=f"{RESULTS}/{{system}}/evaluation/md_test/frames.npz",
    log:
        f"{RESULTS}/logs/{{system}}/md_test_frames.log",
    conda:
        ENV
    params:
        config=params_for(
            "active_learning.md_test_frames", "dynamics.analysis.equilibration_ps"
        ),
    script:
        "../scripts/md_test_frames.py"


rule md_test_label:
    input:
        selected=rules.md_test_frames.output.frames,
    output:
        labels=f"{RESULTS}/{{system}}/evaluation/md_test/labels.npz",
    log:
        f"{RESULTS}/logs/{{system}}/md_test_label.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/md_test_label.tsv"
    conda:
        ENV
    threads: 1
    resources:
        runtime=240,
    params:
        config=params_for("reference"),
    script:
        "../scripts/loop_label.py"


rule md_test_evaluate:
    input:
        unpack(final_model_files),
        binding_dataset=final_file("datasets/binding.npz"),
        labels=rules.md_test_label.output.labels,
    output:
        metrics=f"{RESULTS}/{{system}}/evaluation/md_test_metrics.csv",
    log:
        f"{RESULTS}/logs/{{system}}/md_test_evaluate.log",
    conda:
        ENV
    params:
        config=params_for(),
    script:
        "../scripts/md_test_evaluate.py"
