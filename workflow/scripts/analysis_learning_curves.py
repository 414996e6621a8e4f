"""Rule analysis_learning_curves: Learning curves of all systems and their slopes."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.analysis import learning_curves_summary

setup_logging(snakemake.log[0])
learning_curves_summary(
    curves=list(snakemake.input.curves),
    names=dict(snakemake.params.names),
    csv=snakemake.output.csv,
    slopes_csv=snakemake.output.slopes,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
