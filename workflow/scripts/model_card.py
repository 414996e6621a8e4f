"""Rule model_card: A JSON card beside a model file."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.evaluate import model_card

setup_logging(snakemake.log[0])
model_card(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    card=snakemake.wildcards.card,
    model=snakemake.input.model,
    dataset=snakemake.input.get("dataset"),
    splits=snakemake.input.splits,
    scores=list(snakemake.input.scores),
    metrics=snakemake.input.metrics,
    output=snakemake.output.card,
)
