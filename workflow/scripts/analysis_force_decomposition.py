"""Rule analysis_force_decomposition: Fig. 1: force decomposition of one system."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.analysis import force_decomposition_figure

setup_logging(snakemake.log[0])
force_decomposition_figure(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    label=snakemake.params.label,
    full=snakemake.input.full,
    nonint=snakemake.input.nonint,
    binding=snakemake.input.binding,
    csv=snakemake.output.csv,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
