"""Rule md_test_evaluate: full and Δ errors on the relabelled MD frames."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.rule_io import grouped
from deltagdml.workflow.steps.loop import md_test_evaluate

setup_logging(snakemake.log[0])
md_test_evaluate(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    models=grouped(snakemake.input.items(), "model_"),
    binding_dataset=snakemake.input.binding_dataset,
    labels=snakemake.input.labels,
    metrics=snakemake.output.metrics,
)
