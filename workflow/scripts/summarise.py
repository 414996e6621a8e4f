"""Tables, figures and Markdown summary over all systems."""

from deltagdml.pipeline import setup_logging, summarise

setup_logging(snakemake.log[0])
summarise(
    list(snakemake.input.metrics),
    list(snakemake.input.fragments),
    list(snakemake.input.timings),
    dict(snakemake.output),
)
