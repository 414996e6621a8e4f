"""Rule analysis_binding_stats: Fig. 5: binding statistics of all systems."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.analysis import binding_stats

setup_logging(snakemake.log[0])
binding_stats(
    systems=list(snakemake.params.systems),
    names=dict(snakemake.params.names),
    binding=list(snakemake.input.binding),
    csv=snakemake.output.csv,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
