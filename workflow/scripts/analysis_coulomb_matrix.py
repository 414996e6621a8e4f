"""Coulomb matrix of one geometry with its fragment blocks (paper Fig. 2)."""

from deltagdml.analysis.coulomb_map import run
from deltagdml.pipeline import setup_logging

setup_logging(snakemake.log[0])
run(
    snakemake.params.config,
    snakemake.wildcards.system,
    snakemake.input[0],
    snakemake.output.csv,
    snakemake.output.png,
    snakemake.output.pdf,
)
