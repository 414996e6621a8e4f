"""Rule loop_pool: the grown training pool of a round."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.loop import loop_pool

setup_logging(snakemake.log[0])
loop_pool(
    system=snakemake.wildcards.system,
    new_labels=snakemake.input.new_labels,
    previous_labels=snakemake.input.previous_labels,
    previous_splits=snakemake.input.previous_splits,
    selected=snakemake.input.selected,
    labels=snakemake.output.labels,
    splits=snakemake.output.splits,
)
