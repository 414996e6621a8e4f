"""Rule ingest_dataset: Labels from a user's dataset."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.data import ingest_dataset

setup_logging(snakemake.log[0])
ingest_dataset(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    labels=snakemake.output.labels,
)
