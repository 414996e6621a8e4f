"""Rules loop_label and md_test_label: reference labels of chosen frames."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.loop import loop_label

setup_logging(snakemake.log[0])
loop_label(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    selected=snakemake.input.selected,
    labels=snakemake.output.labels,
)
