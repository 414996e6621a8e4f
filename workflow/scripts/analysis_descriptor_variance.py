"""Descriptor variance along the trajectory of one system (paper Fig. 3)."""

from deltagdml.analysis.descriptor_variance import run
from deltagdml.pipeline import setup_logging

setup_logging(snakemake.log[0])
run(
    snakemake.params.config,
    snakemake.wildcards.system,
    snakemake.input.full,
    snakemake.input.get("trajectory"),
    snakemake.output.csv,
    snakemake.output.png,
    snakemake.output.pdf,
)
