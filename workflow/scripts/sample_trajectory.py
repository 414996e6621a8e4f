"""Langevin MD of one system with the reference method."""

from deltagdml.pipeline import sample, setup_logging

setup_logging(snakemake.log[0])
sample(snakemake.params.config, snakemake.wildcards.system, snakemake.output[0])
