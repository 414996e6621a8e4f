"""The Δ model of one system as one file: fragment models, binding model, manifest."""

from deltagdml.pipeline import bundle_delta, setup_logging

setup_logging(snakemake.log[0])
bundle_delta(
    snakemake.params.config,
    snakemake.wildcards.system,
    model_paths={
        key.removeprefix("model_"): snakemake.input[key] for key in snakemake.params.parts
    },
    binding_dataset=snakemake.input.binding_dataset,
    full_dataset=snakemake.input.full_dataset,
    splits=snakemake.input.splits,
    output=snakemake.output[0],
)
