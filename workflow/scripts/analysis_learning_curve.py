"""Rule analysis_learning_curve: Learning curve of one system."""

from deltagdml.workflow.logs import setup_logging
from deltagdml.workflow.steps.analysis import learning_curve_table

setup_logging(snakemake.log[0])
learning_curve_table(
    config=snakemake.params.config,
    system=snakemake.wildcards.system,
    datasets={
        k.removeprefix("dataset_"): v
        for k, v in snakemake.input.items()
        if k.startswith("dataset_")
    },
    splits=snakemake.input.splits,
    models={
        k.removeprefix("model_"): v for k, v in snakemake.input.items() if k.startswith("model_")
    }
    or None,
    csv=snakemake.output.csv,
)
