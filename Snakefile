# Δ-sGDML reference pipeline: full vs fragment-decomposed (Δ) sGDML force fields.
# Run:  snakemake --cores 2            (default config.yaml)
#       snakemake --cores 2 --configfile workflow/configs/paper.yaml
from snakemake.utils import min_version, validate

min_version("9.0")


# --configfile replaces the default config instead of being merged into it.
if not config:

    configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/dynamics.smk"


rule all:
    default_target: True
    input:
        rules.summarise.output,
        all_datasets(),
        all_model_files(),
        analysis_targets(),
        dynamics_targets(),
