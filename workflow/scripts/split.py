"""Energy-stratified train/valid/test indices of one system."""

from deltagdml.pipeline import setup_logging, split

setup_logging(snakemake.log[0])
split(snakemake.params.config, snakemake.wildcards.system, snakemake.input[0], snakemake.output[0])
