"""Rule sample_replica: One sampling replica (Langevin MD at one temperature)."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.data import sample_replica

setup_logging(snakemake.log[0])
sample_replica(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    replica=int(snakemake.wildcards.replica),
    trajectory=snakemake.output.trajectory,
    frames=snakemake.output.frames,
)
