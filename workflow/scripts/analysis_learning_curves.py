"""Learning curves of all systems: one table, fitted log-log slopes and the figure."""

from deltagdml.analysis.learning_curves import run_summary
from deltagdml.pipeline import setup_logging

setup_logging(snakemake.log[0])
run_summary(
    list(snakemake.input),
    snakemake.output.csv,
    snakemake.output.slopes,
    snakemake.output.png,
    snakemake.output.pdf,
)
