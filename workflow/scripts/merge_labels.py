"""Concatenate label chunks in frame order."""

from deltagdml.pipeline import merge, setup_logging

setup_logging(snakemake.log[0])
merge(list(snakemake.input), snakemake.output.labels, snakemake.output.frames)
