"""Test-set errors of the full and Δ models of one system."""

from deltagdml.pipeline import evaluate, setup_logging

setup_logging(snakemake.log[0])
models = {k.removeprefix("model_"): v for k, v in snakemake.input.items() if k.startswith("model_")}
evaluate(
    snakemake.params.config,
    snakemake.wildcards.system,
    snakemake.input.full_dataset,
    snakemake.input.binding_dataset,
    snakemake.input.splits,
    models,
    snakemake.output.metrics,
    snakemake.output.fragments,
    snakemake.output.predictions,
    list(snakemake.input.scores),
)
