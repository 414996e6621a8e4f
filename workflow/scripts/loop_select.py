"""Checkpoint loop_select: the frames a round labels, and whether the loop goes on."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.loop import loop_select

setup_logging(snakemake.log[0])
loop_select(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    runs=list(snakemake.input.runs),
    selected=snakemake.output.selected,
    decision_file=snakemake.output.decision,
    frames=snakemake.output.frames,
)
