"""Rule split: Train/validation/test splits of a system."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.data import split

setup_logging(snakemake.log[0])
split(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    full=snakemake.input.full,
    splits=snakemake.output.splits,
)
