"""Rule select_frames: Choose the frames to label among the replicas' frames."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.data import select_frames

setup_logging(snakemake.log[0])
select_frames(
    config=snakemake.params.config,
    cv=snakemake.params.cv,
    system=snakemake.wildcards.system,
    replicas=list(snakemake.input.replicas),
    trajectory=snakemake.output.trajectory,
    table=snakemake.output.table,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
