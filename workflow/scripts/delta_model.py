"""Rule delta_model: The Δ model of a system as one file."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.rule_io import grouped
from deltagdml.workflow.steps.train import delta_model

setup_logging(snakemake.log[0])
delta_model(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    models=grouped(snakemake.input.items(), "model_"),
    binding_dataset=snakemake.input.binding_dataset,
    full_dataset=snakemake.input.full_dataset,
    splits=snakemake.input.splits,
    output=snakemake.output.model,
)
