"""Test errors of the full and Δ models of one system versus training-set size."""

from deltagdml.analysis.learning_curves import run
from deltagdml.pipeline import setup_logging

setup_logging(snakemake.log[0])
inputs = dict(snakemake.input.items())
run(
    snakemake.params.config,
    snakemake.wildcards.system,
    {k.removeprefix("dataset_"): v for k, v in inputs.items() if k.startswith("dataset_")},
    snakemake.input.splits,
    {k.removeprefix("model_"): v for k, v in inputs.items() if k.startswith("model_")} or None,
    snakemake.output.csv,
)
