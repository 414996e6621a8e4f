"""Rule evaluate: Test-set errors of the full and Δ models."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.evaluate import evaluate

setup_logging(snakemake.log[0])
evaluate(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    models={
        k.removeprefix("model_"): v for k, v in snakemake.input.items() if k.startswith("model_")
    },
    scores=list(snakemake.input.scores),
    full_dataset=snakemake.input.full_dataset,
    binding_dataset=snakemake.input.binding_dataset,
    splits=snakemake.input.splits,
    metrics=snakemake.output.metrics,
    fragments=snakemake.output.fragments,
    predictions=snakemake.output.predictions,
)
