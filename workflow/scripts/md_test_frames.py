"""Rule md_test_frames: frames of the final Δ model's MD study for a second test set."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.loop import md_test_frames

setup_logging(snakemake.log[0])
md_test_frames(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    runs=list(snakemake.input.runs),
    frames=snakemake.output.frames,
)
