"""Rule train_model: Train one sGDML model with σ chosen on the validation split."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.train import train_model

setup_logging(snakemake.log[0])
train_model(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    part=snakemake.wildcards.part,
    dataset=snakemake.input.dataset,
    splits=snakemake.input.splits,
    model=snakemake.output.model,
    scores=snakemake.output.scores,
    timing=snakemake.output.timing,
)
