"""Labels from the user's own dataset."""

from deltagdml.pipeline import ingest, setup_logging

setup_logging(snakemake.log[0])
ingest(snakemake.params.config, snakemake.wildcards.system, snakemake.output[0])
