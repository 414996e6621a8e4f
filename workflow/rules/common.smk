# Shared definitions: systems, wildcard constraints, input functions.
import sys

from deltagdml.errors import DeltaGDMLError
from deltagdml.data.systems import model_parts
from deltagdml.workflow.checks import check_analysis, check_config, check_dynamics
from deltagdml.workflow.config import (
    dynamics_settings,
    learning_curve_memory_mb,
    sampling_settings,
    selection_cv_settings,
    setting_paths,
    step_config,
    system_entry,
    system_labels,
    system_priorities,
    temperature_label,
    training_memory_mb,
    training_settings,
    user_files,
)

try:  # every check that needs no job runs here, so `snakemake -n` refuses a bad config
    SYSTEMS = check_config(
        config, source_dir=workflow.basedir, read_data=workflow.is_main_process
    )
    check_analysis(config, SYSTEMS)
    check_dynamics(config, SYSTEMS)
except DeltaGDMLError as error:  # one line, no traceback
    sys.exit(f"Config error: {error}")
RESULTS = config["results"]
MD_SYSTEMS = [s for s in SYSTEMS if dynamics_settings(config, s).enabled]
SYSTEM_PRIORITY = system_priorities(config, SYSTEMS)
SYSTEM_LABELS = system_labels(config, SYSTEMS)  # names in figures
ENV = "../../envs/deltagdml.yaml"


wildcard_constraints:
    system="|".join(SYSTEMS),
    part=r"full|binding|fragment_\d+",
    dataset=r"full|binding|nonint|fragment_\d+",
    chunk=r"\d+",
    replica=r"\d+",
    card=r"full|binding|delta|fragment_\d+",


def system_priority(wildcards):
    """Scheduling priority of a system's jobs: the largest kernel's chain starts first."""
    return SYSTEM_PRIORITY[wildcards.system]


def system_label(wildcards):
    """The system's name in figures."""
    return SYSTEM_LABELS[wildcards.system]


def params_for(*sections):
    """Rule params: the config settings a step of one system reads (paths of step_config;
    a wildcard in braces, such as ``{part}``, is the job's)."""
    return lambda wildcards: step_config(
        config, wildcards.system, tuple(s.format(**wildcards) for s in sections)
    )


def selection_cv(wildcards):
    """The collective variables frame selection covers, resolved: a param of their own,
    so that the MD study's settings in ``dynamics`` do not rerun frame selection."""
    return selection_cv_settings(config, wildcards.system)


def train_mem_mb(wildcards, threads, attempt):
    """Memory of a training job: the chosen solver's estimate, doubled on each retry."""
    part = getattr(wildcards, "part", "full")
    settings = training_settings(config, wildcards.system, part)
    return attempt * training_memory_mb(
        SYSTEMS[wildcards.system], part, settings, threads
    )


def learning_curve_mem_mb(wildcards, threads, attempt):
    """Memory of a learning-curve job: its largest fit, doubled on each retry."""
    return attempt * learning_curve_memory_mb(
        config, wildcards.system, SYSTEMS[wildcards.system], threads
    )


def structure_files(wildcards):
    """The system's structure file, if it is one of the user's (not an S22 name)."""
    return user_files(config, wildcards.system, ("structure",))


def user_data_files(wildcards):
    """The structure, the user's dataset and its fragment label files."""
    return user_files(config, wildcards.system, ("structure", "data"))


def symmetry_files(wildcards):
    """Permutation (.npy) files the model(s) of this job are trained with."""
    parts = getattr(wildcards, "part", None)
    parts = (parts,) if parts else tuple(model_parts(SYSTEMS[wildcards.system]))
    return user_files(config, wildcards.system, ("symmetries",), parts)


def labels_input(wildcards):
    """Labels come from sampling + labelling, or from the user's own dataset."""
    if "dataset" in system_entry(config, wildcards.system):
        return f"{RESULTS}/{wildcards.system}/data/ingested_labels.npz"
    return f"{RESULTS}/{wildcards.system}/data/labels.npz"


def replica_files(wildcards):
    """The sampling replicas of a system, one per temperature."""
    n = len(sampling_settings(config, wildcards.system).temperatures_K)
    return [
        f"{RESULTS}/{wildcards.system}/data/replicas/replica_{r}.npz" for r in range(n)
    ]


def label_chunks(wildcards):
    n = config["labelling"]["n_chunks"]
    return [f"{RESULTS}/{wildcards.system}/data/labels/chunk_{i}.npz" for i in range(n)]


def model_files(wildcards):
    return {
        f"model_{part}": f"{RESULTS}/{wildcards.system}/models/{part}.npz"
        for part in model_parts(SYSTEMS[wildcards.system])
    }


def delta_part_files(wildcards):
    """The learned parts of the Δ model: every multi-atom fragment and the binding model."""
    files = model_files(wildcards)
    files.pop("model_full")
    return files


def card_inputs(wildcards):
    """The model a card describes and, for a single model, the dataset it is tested on."""
    folder = f"{RESULTS}/{wildcards.system}"
    model = {"model": f"{folder}/models/{wildcards.card}.npz"}
    if wildcards.card == "delta":
        return model
    return model | {"dataset": f"{folder}/datasets/{wildcards.card}.npz"}


def all_model_files():
    """The Δ model file and a JSON card beside every model, of every system."""
    return [
        f"{RESULTS}/{system}/models/{name}"
        for system in SYSTEMS
        for name in [
            "delta.npz",
            *(f"{m}.card.json" for m in [*model_parts(SYSTEMS[system]), "delta"]),
        ]
    ]


def score_files(wildcards):
    return [
        f"{RESULTS}/{wildcards.system}/models/{part}_sigma_scores.csv"
        for part in model_parts(SYSTEMS[wildcards.system])
    ]


def timing_files(wildcards):
    return [
        f"{RESULTS}/{system}/models/{part}_timing.csv"
        for system, sys_ in SYSTEMS.items()
        for part in model_parts(sys_)
    ]


def all_datasets():
    """Every Δ dataset of every system: W, W_k, W0 (nonint) and Wb (binding)."""
    return [
        f"{RESULTS}/{system}/datasets/{part}.npz"
        for system, sys_ in SYSTEMS.items()
        for part in [*model_parts(sys_), "nonint"]
    ]


# MD stability study (dynamics.smk)


def md_run_inputs(wildcards):
    """The model files a run needs: the full model, or the Δ parts and ion constants."""
    if wildcards.model == "full":
        return {"model_full": model_files(wildcards)["model_full"]}
    return {
        **delta_part_files(wildcards),
        "binding_dataset": f"{RESULTS}/{wildcards.system}/datasets/binding.npz",
    }


def md_run_params(wildcards):
    """The dynamics settings one MD run reads: not the analysis, nor which systems, models
    and temperatures run (the run's wildcards say that)."""
    unread = ("enabled", "models", "temperatures_K", "analysis")
    return params_for("seed", *setting_paths("dynamics", unread))(wildcards)


def md_run_files(system):
    """Every run of a system: one per configured model and temperature."""
    s = dynamics_settings(config, system)
    return [
        f"{RESULTS}/{system}/dynamics/runs/{model}_{temperature_label(t)}K.npz"
        for model in s.models
        for t in s.temperatures_K
    ]


def md_runs(wildcards):
    return md_run_files(wildcards.system)


def md_timings(wildcards):
    """The speed record of every run of every system."""
    return [
        path.removesuffix(".npz") + "_timing.csv"
        for system in MD_SYSTEMS
        for path in md_run_files(system)
    ]


def dynamics_targets():
    """Every output of the MD study: per-system analyses and the summary over the systems
    with ``dynamics.enabled``."""
    if not MD_SYSTEMS:
        return []
    per_system = [
        f"{RESULTS}/{system}/dynamics/{name}"
        for system in MD_SYSTEMS
        for name in ("stability.csv", "msad.csv", "fes.npz", "fes.png", "msad.png")
    ]
    summary = [
        f"{RESULTS}/summary/md_stability.{ext}" for ext in ("csv", "md", "png", "pdf")
    ]
    return [*per_system, *summary, f"{RESULTS}/summary/md_timing.csv"]
