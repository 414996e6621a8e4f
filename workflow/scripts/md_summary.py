"""Rule md_summary: MD stability over all systems."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.dynamics import md_summary

setup_logging(snakemake.log[0])
md_summary(
    stability=list(snakemake.input.stability),
    timing=list(snakemake.input.timing),
    names=dict(snakemake.params.names),
    **dict(snakemake.output.items()),
)
