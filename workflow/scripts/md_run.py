"""One Langevin MD run of the full or Δ model of a system at one temperature."""

from deltagdml.dynamics.steps import simulate
from deltagdml.pipeline import setup_logging

setup_logging(snakemake.log[0])
models = {k.removeprefix("model_"): v for k, v in snakemake.input.items() if k.startswith("model_")}
simulate(
    snakemake.params.config,
    snakemake.wildcards.system,
    snakemake.wildcards.model,
    float(snakemake.wildcards.temperature),
    models,
    snakemake.input.get("binding_dataset"),
    snakemake.input.full_dataset,
    snakemake.input.splits,
    snakemake.output.run,
    snakemake.output.timing,
    snakemake.output.frames,
)
