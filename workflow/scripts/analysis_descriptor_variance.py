"""Rule analysis_descriptor_variance: Fig. 3: descriptor variance of one system."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.analysis import descriptor_variance_figure

setup_logging(snakemake.log[0])
descriptor_variance_figure(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    label=snakemake.params.label,
    full=snakemake.input.full,
    trajectory=snakemake.input.get("trajectory"),
    csv=snakemake.output.csv,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
