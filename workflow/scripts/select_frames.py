"""Choose the frames to label among the replicas' frames."""

from deltagdml.pipeline import select, setup_logging

setup_logging(snakemake.log[0])
select(
    snakemake.params.config,
    snakemake.wildcards.system,
    list(snakemake.input),
    trajectory=snakemake.output.trajectory,
    table=snakemake.output.table,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
