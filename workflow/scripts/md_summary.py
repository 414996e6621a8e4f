"""MD stability table over all systems and MD speed per model."""

from deltagdml.dynamics.steps import summarise
from deltagdml.pipeline import setup_logging

setup_logging(snakemake.log[0])
summarise(
    list(snakemake.input.stability),
    list(snakemake.input.timing),
    dict(snakemake.output.items()),
)
