"""Binding energies and binding-force magnitudes across systems (paper Fig. 5)."""

from deltagdml.analysis.binding_stats import run
from deltagdml.pipeline import setup_logging

setup_logging(snakemake.log[0])
run(
    list(snakemake.params.systems),
    list(snakemake.input),
    snakemake.output.csv,
    snakemake.output.png,
    snakemake.output.pdf,
)
