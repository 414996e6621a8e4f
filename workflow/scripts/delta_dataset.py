"""One Δ dataset (full, fragment_k, nonint or binding) in sGDML format."""

from deltagdml.pipeline import delta_dataset, setup_logging

setup_logging(snakemake.log[0])
delta_dataset(
    snakemake.params.config,
    snakemake.wildcards.system,
    snakemake.input[0],
    snakemake.wildcards.dataset,
    snakemake.output[0],
)
