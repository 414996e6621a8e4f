"""Rule label_chunk: Reference labels of one chunk of frames."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.data import label_chunk

setup_logging(snakemake.log[0])
label_chunk(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    trajectory=snakemake.input.trajectory,
    chunk=int(snakemake.wildcards.chunk),
    n_chunks=snakemake.params.n_chunks,
    labels=snakemake.output.labels,
)
