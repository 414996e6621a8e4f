"""Reference energies/forces of complex and fragments for one chunk of frames."""

from deltagdml.pipeline import label_chunk, setup_logging

setup_logging(snakemake.log[0])
label_chunk(
    snakemake.params.config,
    snakemake.wildcards.system,
    snakemake.input[0],
    int(snakemake.wildcards.chunk),
    snakemake.params.n_chunks,
    snakemake.output[0],
)
