"""Rule md_analyse: Stability, free-energy surfaces and MSAD of one system's MD runs."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.dynamics import md_analyse

setup_logging(snakemake.log[0])
md_analyse(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    label=snakemake.params.label,
    runs=list(snakemake.input.runs),
    **dict(snakemake.output.items()),
)
