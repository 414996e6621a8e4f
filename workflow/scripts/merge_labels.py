"""Rule merge_labels: Merge the label chunks of a system."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.data import merge_labels

setup_logging(snakemake.log[0])
merge_labels(
    chunks=list(snakemake.input.chunks),
    labels=snakemake.output.labels,
    frames=snakemake.output.frames,
)
