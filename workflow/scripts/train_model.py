"""Train one sGDML model with σ chosen on the validation split."""

from deltagdml.pipeline import setup_logging, train

setup_logging(snakemake.log[0])
train(
    snakemake.params.config,
    snakemake.wildcards.system,
    snakemake.wildcards.part,
    snakemake.input.dataset,
    snakemake.input.splits,
    snakemake.output.model,
    snakemake.output.scores,
    snakemake.output.timing,
)
