# Test-set comparison of full and Δ models; tables, figures and summary over all systems.


rule evaluate:
    input:
        unpack(final_model_files),
        scores=final_score_files,
        full_dataset=final_file("datasets/full.npz"),
        binding_dataset=final_file("datasets/binding.npz"),
        splits=final_file("splits.npz"),
    output:
        metrics=f"{RESULTS}/{{system}}/evaluation/metrics.csv",
        fragments=f"{RESULTS}/{{system}}/evaluation/fragment_force_mae.csv",
        predictions=f"{RESULTS}/{{system}}/evaluation/test_predictions.npz",
    log:
        f"{RESULTS}/logs/{{system}}/evaluate.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/evaluate.tsv"
    conda:
        ENV
    params:
        config=params_for(),
    script:
        "../scripts/evaluate.py"


rule summarise:
    input:
        metrics=expand(f"{RESULTS}/{{system}}/evaluation/metrics.csv", system=SYSTEMS),
        fragments=expand(
            f"{RESULTS}/{{system}}/evaluation/fragment_force_mae.csv", system=SYSTEMS
        ),
        timings=timing_files,
    output:
        metrics=f"{RESULTS}/summary/metrics.csv",
        comparison=f"{RESULTS}/summary/full_vs_delta.csv",
        fragments=f"{RESULTS}/summary/fragment_force_mae.csv",
        training_times=f"{RESULTS}/summary/training_times.csv",
        paper=f"{RESULTS}/summary/paper_comparison.csv",
        fig6_png=report(
            f"{RESULTS}/summary/fig6_errors.png",
            caption="../report/fig6_errors.rst",
            category="Full vs Δ",
        ),
        fig6_pdf=f"{RESULTS}/summary/fig6_errors.pdf",
        fig7_png=report(
            f"{RESULTS}/summary/fig7_fragment_forces.png",
            caption="../report/fig7_fragment_forces.rst",
            category="Full vs Δ",
        ),
        fig7_pdf=f"{RESULTS}/summary/fig7_fragment_forces.pdf",
        summary=report(
            f"{RESULTS}/summary/summary.md",
            caption="../report/summary.rst",
            category="Full vs Δ",
        ),
    log:
        f"{RESULTS}/logs/summarise.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarise.tsv"
    conda:
        ENV
    params:
        presets={
            name: (entry or {}).get("preset")
            for name, entry in config["systems"].items()
        },
        names=SYSTEM_LABELS,
    script:
        "../scripts/summarise.py"


rule model_card:
    input:
        unpack(card_inputs),
        scores=final_score_files,
        splits=final_file("splits.npz"),
        metrics=f"{RESULTS}/{{system}}/evaluation/metrics.csv",
    output:
        card=f"{RESULTS}/{{system}}/models/{{card}}.card.json",
    log:
        f"{RESULTS}/logs/{{system}}/model_card_{{card}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/model_card_{{card}}.tsv"
    conda:
        ENV
    params:
        config=params_for("reference", "sampling.calculator"),
    script:
        "../scripts/model_card.py"
