# MD stability study (paper Fig. 8): full vs Δ models on a temperature grid, per system.
from deltagdml.dynamics import dynamics_settings, temperature_label


wildcard_constraints:
    model="full|delta",
    temperature=r"\d+(\.\d+)?",


def md_run_inputs(wildcards):
    """The model files a run needs: the full model, or the Δ parts and ion constants."""
    files = model_files(wildcards)
    if wildcards.model == "full":
        return {"model_full": files["model_full"]}
    files.pop("model_full")
    return {
        **files,
        "binding_dataset": f"{RESULTS}/{wildcards.system}/datasets/binding.npz",
    }


def md_run_params(wildcards):
    """params_for("seed", "dynamics") without the analysis settings (they do not change runs)."""
    cfg = params_for("seed", "dynamics")(wildcards)
    for section in (cfg, cfg["systems"][wildcards.system]):
        if "dynamics" in section:
            section["dynamics"].pop("analysis", None)
    return cfg


def md_runs(wildcards):
    s = dynamics_settings(config, wildcards.system)
    return [
        f"{RESULTS}/{wildcards.system}/dynamics/runs/{model}_{temperature_label(t)}K.npz"
        for model in s["models"]
        for t in s["temperatures_K"]
    ]


def dynamics_targets():
    """Every output of the MD study: per-system analyses and the summary over systems."""
    per_system = [
        f"{RESULTS}/{system}/dynamics/{name}"
        for system in SYSTEMS
        for name in ("stability.csv", "msad.csv", "fes.npz", "fes.png", "msad.png")
    ]
    summary = [
        f"{RESULTS}/summary/md_stability.{ext}" for ext in ("csv", "md", "png", "pdf")
    ]
    return [*per_system, *summary, f"{RESULTS}/summary/md_speed.csv"]


rule md_run:
    input:
        unpack(md_run_inputs),
        full_dataset=f"{RESULTS}/{{system}}/datasets/full.npz",
        splits=f"{RESULTS}/{{system}}/splits.npz",
    output:
        f"{RESULTS}/{{system}}/dynamics/runs/{{model}}_{{temperature}}K.npz",
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
        md_runs,
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
    log:
        f"{RESULTS}/logs/{{system}}/md_analyse.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{system}}/md_analyse.tsv"
    conda:
        ENV
    params:
        config=params_for("dynamics"),
    script:
        "../scripts/md_analyse.py"


rule md_summary:
    input:
        expand(f"{RESULTS}/{{system}}/dynamics/stability.csv", system=SYSTEMS),
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
        speed=f"{RESULTS}/summary/md_speed.csv",
    log:
        f"{RESULTS}/logs/md_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/md_summary.tsv"
    conda:
        ENV
    script:
        "../scripts/md_summary.py"
