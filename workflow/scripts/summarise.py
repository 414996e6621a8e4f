"""Rule summarise: Tables and figures over all systems."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.evaluate import summarise

setup_logging(snakemake.log[0])
summarise(
    metrics=list(snakemake.input.metrics),
    fragments=list(snakemake.input.fragments),
    timings=list(snakemake.input.timings),
    presets=dict(snakemake.params.presets),
    names=dict(snakemake.params.names),
    out=dict(snakemake.output.items()),
)
