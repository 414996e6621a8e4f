"""Rule analysis_coulomb_matrix: Fig. 2: the Coulomb matrix of one system."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.analysis import coulomb_matrix_figure

setup_logging(snakemake.log[0])
coulomb_matrix_figure(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    label=snakemake.params.label,
    full=snakemake.input.full,
    csv=snakemake.output.csv,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
