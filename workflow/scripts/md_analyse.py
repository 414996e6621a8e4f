"""Stability table, free-energy surfaces and MSAD of the MD runs of one system."""

from deltagdml.dynamics.steps import analyse
from deltagdml.pipeline import setup_logging

setup_logging(snakemake.log[0])
analyse(
    snakemake.params.config,
    snakemake.wildcards.system,
    list(snakemake.input),
    dict(snakemake.output.items()),
)
