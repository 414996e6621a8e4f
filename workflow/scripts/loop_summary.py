"""Rule loop_summary: the rounds' table and figure."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.loop import loop_summary

setup_logging(snakemake.log[0])
n = snakemake.params.n_temperatures
explorations = list(snakemake.input.explorations)
loop_summary(
    system=snakemake.wildcards.system,
    label=snakemake.params.label,
    models=list(snakemake.input.models),
    splits=list(snakemake.input.splits),
    decisions=list(snakemake.input.decisions),
    explorations=[explorations[i : i + n] for i in range(0, len(explorations), n)],
    test_datasets={
        path.rsplit("/", 1)[-1].removesuffix(".npz"): path for path in snakemake.input.test_datasets
    },
    test_splits=snakemake.input.splits[0],
    table=snakemake.output.table,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
