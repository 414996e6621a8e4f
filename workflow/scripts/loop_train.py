"""Rules loop_train and loop_final_full: a part's model of a round, kept or retrained."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.loop import retrain_part

setup_logging(snakemake.log[0])
retrain_part(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    part=snakemake.params.get("part") or snakemake.wildcards.part,
    dataset=snakemake.input.dataset,
    splits=snakemake.input.splits,
    previous_model=snakemake.input.previous_model,
    previous_splits=snakemake.input.previous_splits,
    previous_scores=snakemake.input.previous_scores,
    model=snakemake.output.model,
    scores=snakemake.output.scores,
    timing=snakemake.output.timing,
)
