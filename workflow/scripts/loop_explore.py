"""Rule loop_explore: exploration runs of one round at one temperature."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.loop import loop_explore

setup_logging(snakemake.log[0])
loop_explore(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    round_=int(snakemake.wildcards.round),
    temperature=float(snakemake.wildcards.temperature),
    model=snakemake.input.model,
    full_dataset=snakemake.input.full_dataset,
    splits=snakemake.input.splits,
    runs=snakemake.output.runs,
)
