# MD stability study (paper Fig. 8): full vs Δ models on a temperature grid, per system.


wildcard_constraints:
    model="full|delta",
    temperature=r"\d+(\.\d+)?",


rule md_run:
    input:
        unpack(md_run_inputs),
        full_dataset=final_file("datasets/full.npz"),
        splits=final_file("splits.npz"),
    output:
        run=f"{RESULTS}/{{system}}/dynamics/runs/{{model}}_{{temperature}}K.npz",
        timing=f"{RESULTS}/{{system}}/dynamics/runs/{{model}}_{{temperature}}K_timing.csv",
        frames=f"{RESULTS}/{{system}}/dynamics/runs/{{model}}_{{temperature}}K.extxyz",
    log:
        f"{RESULTS}/logs/{{system}}/md_{{model}}_{{temperature}}K.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/md_{{model}}_{{temperature}}K.tsv"
    conda:
        ENV
    threads: 1
    resources:
        runtime=240,
    params:
        config=md_run_params,
    script:
        "../scripts/md_run.py"


rule md_analyse:
    input:
        runs=md_runs,
    output:
        stability=f"{RESULTS}/{{system}}/dynamics/stability.csv",
        msad=f"{RESULTS}/{{system}}/dynamics/msad.csv",
        fes=f"{RESULTS}/{{system}}/dynamics/fes.npz",
        fes_png=report(
            f"{RESULTS}/{{system}}/dynamics/fes.png",
            caption="../report/md_fes.rst",
            category="Molecular dynamics",
            subcategory="{system}",
        ),
        fes_pdf=f"{RESULTS}/{{system}}/dynamics/fes.pdf",
        msad_png=report(
            f"{RESULTS}/{{system}}/dynamics/msad.png",
            caption="../report/md_msad.rst",
            category="Molecular dynamics",
            subcategory="{system}",
        ),
        msad_pdf=f"{RESULTS}/{{system}}/dynamics/msad.pdf",
        uncertainty_png=report(
            f"{RESULTS}/{{system}}/dynamics/uncertainty.png",
            caption="../report/md_uncertainty.rst",
            category="Molecular dynamics",
            subcategory="{system}",
        ),
        uncertainty_pdf=f"{RESULTS}/{{system}}/dynamics/uncertainty.pdf",
    log:
        f"{RESULTS}/logs/{{system}}/md_analyse.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/md_analyse.tsv"
    conda:
        ENV
    params:
        config=params_for("dynamics.analysis"),
        label=system_label,
    script:
        "../scripts/md_analyse.py"


rule md_summary:
    input:
        stability=expand(
            f"{RESULTS}/{{system}}/dynamics/stability.csv", system=MD_SYSTEMS
        ),
        timing=md_timings,
    output:
        csv=f"{RESULTS}/summary/md_stability.csv",
        md=report(
            f"{RESULTS}/summary/md_stability.md",
            caption="../report/md_stability.rst",
            category="Molecular dynamics",
        ),
        png=report(
            f"{RESULTS}/summary/md_stability.png",
            caption="../report/md_stability.rst",
            category="Molecular dynamics",
        ),
        pdf=f"{RESULTS}/summary/md_stability.pdf",
        speed=f"{RESULTS}/summary/md_timing.csv",
    log:
        f"{RESULTS}/logs/md_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/md_summary.tsv"
    conda:
        ENV
    params:
        names=SYSTEM_LABELS,
    script:
        "../scripts/md_summary.py"
