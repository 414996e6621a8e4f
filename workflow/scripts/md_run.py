"""Rule md_run: One MD run of the full or Δ model at one temperature."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.dynamics import md_run

setup_logging(snakemake.log[0])
md_run(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    model=snakemake.wildcards.model,
    temperature=float(snakemake.wildcards.temperature),
    models={
        k.removeprefix("model_"): v for k, v in snakemake.input.items() if k.startswith("model_")
    },
    binding_dataset=snakemake.input.get("binding_dataset"),
    full_dataset=snakemake.input.full_dataset,
    splits=snakemake.input.splits,
    run=snakemake.output.run,
    timing=snakemake.output.timing,
    frames=snakemake.output.frames,
)
