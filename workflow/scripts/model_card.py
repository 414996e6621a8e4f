"""A JSON card beside a model: theory, σ, sizes, validation and test errors, units."""

from deltagdml.pipeline import model_card, setup_logging

setup_logging(snakemake.log[0])
model_card(
    snakemake.params.config,
    snakemake.wildcards.system,
    snakemake.wildcards.card,
    model=snakemake.input.model,
    dataset=snakemake.input.get("dataset"),
    splits=snakemake.input.splits,
    scores=list(snakemake.input.scores),
    metrics=snakemake.input.metrics,
    output=snakemake.output[0],
)
