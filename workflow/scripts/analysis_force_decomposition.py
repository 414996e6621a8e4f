"""Full, isolated-fragment and binding forces of a representative frame (paper Fig. 1)."""

from deltagdml.analysis.force_decomposition import run
from deltagdml.pipeline import setup_logging

setup_logging(snakemake.log[0])
run(
    snakemake.params.config,
    snakemake.wildcards.system,
    {key: snakemake.input[key] for key in ("full", "nonint", "binding")},
    snakemake.output.csv,
    snakemake.output.png,
    snakemake.output.pdf,
)
