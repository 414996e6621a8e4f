# Δ-sGDML reference pipeline: full vs fragment-decomposed (Δ) sGDML force fields.
# Run:  snakemake --cores 2            (default config.yaml)
#       snakemake --cores 2 --configfile workflow/configs/paper.yaml
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The package of this checkout, for this process and for every job (also inside a
# `--sdm conda` environment, which holds only the dependencies, see envs/deltagdml.yaml).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from deltagdml.errors import ConfigError
from deltagdml.workflow.checks import (
    check_integers,
    check_unique_keys,
    schema_error_line,
)
from deltagdml.workflow.config import export_source_path

export_source_path(Path(workflow.basedir) / "src")


# --configfile replaces the default config instead of being merged into it;
# --config key=value alone overrides keys of config.yaml.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


SCHEMA = "workflow/schemas/config.schema.yaml"
try:
    # the files read: --configfile, or config.yaml
    check_unique_keys(workflow.configfiles)
    validate(config, SCHEMA)
    check_integers(config, Path(workflow.basedir) / SCHEMA)  # no 1.0e12 for an integer
except (WorkflowError, ConfigError) as error:  # one line naming the key, no traceback
    sys.exit(f"Config error: {schema_error_line(error)}")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/loop.smk"


# cheap steps: never a cluster job of their own
localrules:
    all,
    select_frames,
    delta_model,
    model_card,
    summarise,
    analysis_learning_curves,
    md_summary,
    loop_select,
    loop_pool,
    loop_dataset,
    loop_delta_model,
    loop_final_delta,
    loop_summary,
    md_test_frames,
    md_test_evaluate,


rule all:
    default_target: True
    input:
        rules.summarise.output,
        all_datasets(),
        all_model_files(),
        analysis_targets(),
        dynamics_targets(),
        loop_targets(),
