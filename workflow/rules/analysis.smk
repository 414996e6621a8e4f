# Paper analyses: Coulomb matrix (Fig. 2), descriptor variance (Fig. 3), binding statistics (Fig. 5), force
# decomposition (Fig. 1) and learning curves of the full and Δ models.
# Settings: the optional `analysis:` section, defaults in deltagdml.settings.AnalysisSettings.
# Input functions are lambdas: the linter wants functions in common.smk only.
from deltagdml.workflow.config import learning_curve_sizes, training_settings

# Every output of the analyses, for `rule all`.
analysis_targets = lambda: [
    *expand(rules.analysis_coulomb_matrix.output, system=SYSTEMS),
    *expand(rules.analysis_descriptor_variance.output, system=SYSTEMS),
    *expand(rules.analysis_force_decomposition.output, system=SYSTEMS),
    *rules.analysis_binding_stats.output,
    *rules.analysis_learning_curves.output,
]


rule analysis_descriptor_variance:
    input:
        # frames of the sampled trajectory, or of the full dataset for a user's own data
        unpack(
            lambda w: {"full": f"{RESULTS}/{w.system}/datasets/full.npz"}
            | (
                {}
                if "dataset" in system_entry(config, w.system)
                else {"trajectory": f"{RESULTS}/{w.system}/data/trajectory.npz"}
            )
        ),
    output:
        csv=f"{RESULTS}/{{system}}/analysis/descriptor_variance.csv",
        png=report(
            f"{RESULTS}/{{system}}/analysis/fig3_descriptor_variance.png",
            caption="../report/analysis_descriptor_variance.rst",
            category="Analyses",
            subcategory="Fig. 3: descriptor variance",
            labels={"system": "{system}"},
        ),
        pdf=f"{RESULTS}/{{system}}/analysis/fig3_descriptor_variance.pdf",
    log:
        f"{RESULTS}/logs/{{system}}/analysis_descriptor_variance.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/analysis_descriptor_variance.tsv"
    conda:
        ENV
    params:
        config=params_for(
            "seed",
            "analysis.descriptor_frame_pairs",
            "analysis.descriptor_frames",
            "analysis.descriptor_entries.{system}",
        ),
        label=system_label,
    script:
        "../scripts/analysis_descriptor_variance.py"


rule analysis_coulomb_matrix:
    input:
        full=f"{RESULTS}/{{system}}/datasets/full.npz",
    output:
        csv=f"{RESULTS}/{{system}}/analysis/coulomb_matrix_blocks.csv",
        png=report(
            f"{RESULTS}/{{system}}/analysis/fig2_coulomb_matrix.png",
            caption="../report/analysis_coulomb_matrix.rst",
            category="Analyses",
            subcategory="Fig. 2: Coulomb matrix",
            labels={"system": "{system}"},
        ),
        pdf=f"{RESULTS}/{{system}}/analysis/fig2_coulomb_matrix.pdf",
    log:
        f"{RESULTS}/logs/{{system}}/analysis_coulomb_matrix.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/analysis_coulomb_matrix.tsv"
    conda:
        ENV
    params:
        config=params_for(),
        label=system_label,
    script:
        "../scripts/analysis_coulomb_matrix.py"


rule analysis_force_decomposition:
    input:
        full=f"{RESULTS}/{{system}}/datasets/full.npz",
        nonint=f"{RESULTS}/{{system}}/datasets/nonint.npz",
        binding=f"{RESULTS}/{{system}}/datasets/binding.npz",
    output:
        csv=f"{RESULTS}/{{system}}/analysis/force_decomposition.csv",
        png=report(
            f"{RESULTS}/{{system}}/analysis/fig1_force_decomposition.png",
            caption="../report/analysis_force_decomposition.rst",
            category="Analyses",
            subcategory="Fig. 1: force decomposition",
            labels={"system": "{system}"},
        ),
        pdf=f"{RESULTS}/{{system}}/analysis/fig1_force_decomposition.pdf",
    log:
        f"{RESULTS}/logs/{{system}}/analysis_force_decomposition.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/analysis_force_decomposition.tsv"
    conda:
        ENV
    params:
        config=params_for("analysis.force_amplification"),
        label=system_label,
    script:
        "../scripts/analysis_force_decomposition.py"


rule analysis_binding_stats:
    input:
        binding=expand(f"{RESULTS}/{{system}}/datasets/binding.npz", system=SYSTEMS),
    output:
        csv=report(
            f"{RESULTS}/analysis/binding_stats.csv",
            caption="../report/analysis_binding_stats_table.rst",
            category="Analyses",
            subcategory="Fig. 5: binding statistics",
        ),
        png=report(
            f"{RESULTS}/analysis/fig5_binding_stats.png",
            caption="../report/analysis_binding_stats.rst",
            category="Analyses",
            subcategory="Fig. 5: binding statistics",
        ),
        pdf=f"{RESULTS}/analysis/fig5_binding_stats.pdf",
    log:
        f"{RESULTS}/logs/analysis_binding_stats.log",
    benchmark:
        f"{RESULTS}/benchmarks/analysis_binding_stats.tsv"
    conda:
        ENV
    params:
        systems=list(SYSTEMS),
        names=SYSTEM_LABELS,
    script:
        "../scripts/analysis_binding_stats.py"


rule analysis_learning_curve:
    input:
        unpack(
            lambda w: {
                f"dataset_{part}": f"{RESULTS}/{w.system}/datasets/{part}.npz"
                for part in model_parts(SYSTEMS[w.system])
            }
        ),
        # the pipeline's models serve the size equal to the whole train split
        unpack(
            lambda w: (
                model_files(w)
                if training_settings(config, w.system, "full").n_train
                in learning_curve_sizes(config, w.system)
                else {}
            )
        ),
        splits=f"{RESULTS}/{{system}}/splits.npz",
        symmetries=symmetry_files,
    output:
        csv=f"{RESULTS}/{{system}}/analysis/learning_curve.csv",
    log:
        f"{RESULTS}/logs/{{system}}/analysis_learning_curve.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/analysis_learning_curve.tsv"
    priority: system_priority
    conda:
        ENV
    threads: config["training_threads"]
    resources:
        runtime=240,
        mem_mb=learning_curve_mem_mb,
    params:
        config=params_for("seed", "training", "analysis.learning_curve_sizes"),
    script:
        "../scripts/analysis_learning_curve.py"


rule analysis_learning_curves:
    input:
        curves=expand(
            f"{RESULTS}/{{system}}/analysis/learning_curve.csv", system=SYSTEMS
        ),
    output:
        csv=f"{RESULTS}/analysis/learning_curves.csv",
        slopes=report(
            f"{RESULTS}/analysis/learning_curve_slopes.csv",
            caption="../report/analysis_learning_curve_slopes.rst",
            category="Analyses",
            subcategory="Learning curves",
        ),
        png=report(
            f"{RESULTS}/analysis/learning_curves.png",
            caption="../report/analysis_learning_curves.rst",
            category="Analyses",
            subcategory="Learning curves",
        ),
        pdf=f"{RESULTS}/analysis/learning_curves.pdf",
    log:
        f"{RESULTS}/logs/analysis_learning_curves.log",
    benchmark:
        f"{RESULTS}/benchmarks/analysis_learning_curves.tsv"
    conda:
        ENV
    params:
        names=SYSTEM_LABELS,
    script:
        "../scripts/analysis_learning_curves.py"
