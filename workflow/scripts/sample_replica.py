"""Langevin MD of one sampling replica with the sampling calculator."""

from deltagdml.pipeline import sample_replica, setup_logging

setup_logging(snakemake.log[0])
sample_replica(
    snakemake.params.config,
    snakemake.wildcards.system,
    int(snakemake.wildcards.replica),
    snakemake.output.trajectory,
    snakemake.output.frames,
)
