"""Rule delta_dataset: One Δ dataset (full, fragment_k, nonint or binding)."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.data import delta_dataset

setup_logging(snakemake.log[0])
delta_dataset(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    labels=snakemake.input.labels,
    part=snakemake.wildcards.dataset,
    dataset=snakemake.output.dataset,
)
