# Shared definitions: systems, wildcard constraints, input functions.
import json
import sys

from deltagdml.errors import DeltaGDMLError
from deltagdml.data.systems import model_parts
from deltagdml.workflow.checks import check_analysis, check_config, check_dynamics
from deltagdml.workflow.config import (
    active_learning_settings,
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
    round=r"[1-9]\d*",


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


def labels_file(system):
    """Labels come from sampling + labelling, or from the user's own dataset."""
    if "dataset" in system_entry(config, system):
        return f"{RESULTS}/{system}/data/ingested_labels.npz"
    return f"{RESULTS}/{system}/data/labels.npz"


def labels_input(wildcards):
    return labels_file(wildcards.system)


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
    """The (final) model a card describes and, for a single model, the dataset it is tested
    on."""
    folder = round_dir(wildcards.system, final_round(wildcards.system))
    card = wildcards.card
    model = {"model": final_model_files(wildcards).get(f"model_{card}")}
    if card == "delta":
        return {"model": f"{folder}/models/delta.npz"}
    return model | {"dataset": f"{folder}/datasets/{card}.npz"}


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


def final_model_files(wildcards):
    """The models the evaluation, cards and MD study use: the pipeline's, or with the loop
    the final round's parts and the full model trained on the same final geometries."""
    system = wildcards.system
    if system not in LOOP_SYSTEMS:
        return model_files(wildcards)
    folder = round_dir(system, final_round(system))
    return {
        f"model_{part}": (
            f"{RESULTS}/{system}/loop/final/full.npz"
            if part == "full"
            else f"{folder}/models/{part}.npz"
        )
        for part in model_parts(SYSTEMS[system])
    }


def final_score_files(wildcards):
    """The σ scores of :func:`final_model_files`."""
    return [
        path.removesuffix(".npz") + "_sigma_scores.csv"
        for path in final_model_files(wildcards).values()
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
    """The (final) model files a run needs: the full model, or the Δ parts and ion
    constants."""
    files = final_model_files(wildcards)
    if wildcards.model == "full":
        return {"model_full": files["model_full"]}
    files.pop("model_full")
    return files | {"binding_dataset": final_file("datasets/binding.npz")(wildcards)}


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
        for name in (
            "stability.csv",
            "msad.csv",
            "fes.npz",
            "fes.png",
            "msad.png",
            "uncertainty.png",
        )
    ]
    summary = [
        f"{RESULTS}/summary/md_stability.{ext}" for ext in ("csv", "md", "png", "pdf")
    ]
    return [*per_system, *summary, f"{RESULTS}/summary/md_timing.csv"]


# Active learning (loop.smk): round r ≥ 1 explores with the models of round r − 1;
# round 0 is the pipeline above. With the loop on, the evaluation, model cards and the MD
# study use the final round's models.

LOOP_SYSTEMS = [s for s in SYSTEMS if active_learning_settings(config, s).enabled]


def round_dir(system, r):
    """Folder of round ``r``'s models, datasets and splits (round 0: the pipeline's)."""
    folder = f"{RESULTS}/{system}"
    return folder if int(r) == 0 else f"{folder}/loop/round_{r}"


def round_labels(system, r):
    """The labelled pool of round ``r``."""
    if int(r) == 0:
        return labels_file(system)
    return f"{round_dir(system, r)}/labels.npz"


def loop_temperatures(system):
    return active_learning_settings(config, system).temperatures_K


def explore_files(system, r):
    return [
        f"{RESULTS}/{system}/loop/round_{r}/explore/{temperature_label(t)}K.npz"
        for t in loop_temperatures(system)
    ]


def loop_previous(wildcards):
    """The Δ model, complex dataset and splits of the round before ``wildcards.round``."""
    folder = round_dir(wildcards.system, int(wildcards.round) - 1)
    return {
        "model": f"{folder}/models/delta.npz",
        "full_dataset": f"{folder}/datasets/full.npz",
        "splits": f"{folder}/splits.npz",
    }


def loop_continues(system, r):
    """Whether round ``r``'s exploration asks for labels (its checkpoint's decision)."""
    decision = checkpoints.loop_select.get(system=system, round=r).output.decision
    with open(decision) as handle:
        return json.load(handle)["continue"]


def final_round(system):
    """The round whose models are final: the last one whose exploration asked for
    nothing, or ``max_rounds``; 0 (the pipeline's) without the loop."""
    if system not in LOOP_SYSTEMS:
        return 0
    for r in range(1, active_learning_settings(config, system).max_rounds + 1):
        if not loop_continues(system, r):
            return r - 1
    return active_learning_settings(config, system).max_rounds


def final_file(path):
    """Input function: ``path`` inside the final round's folder of the job's system."""
    return (
        lambda wildcards: f"{round_dir(wildcards.system, final_round(wildcards.system))}/{path}"
    )


def loop_train_mem_mb(wildcards, threads, attempt):
    """Memory of a loop training job: the estimate for the largest pool it can reach."""
    part = getattr(wildcards, "part", "full")
    settings = training_settings(config, wildcards.system, part)
    s = active_learning_settings(config, wildcards.system)
    return attempt * training_memory_mb(
        SYSTEMS[wildcards.system],
        part,
        settings,
        threads,
        settings.n_train + s.max_rounds * s.budget,
    )


def loop_summary_inputs(wildcards):
    """Every round's Δ model and splits up to the final one, and the decisions and
    explorations of the rounds that explored them."""
    system = wildcards.system
    final = final_round(system)
    explored = range(
        1, min(final + 1, active_learning_settings(config, system).max_rounds) + 1
    )
    return {
        "models": [
            f"{round_dir(system, r)}/models/delta.npz" for r in range(final + 1)
        ],
        "splits": [f"{round_dir(system, r)}/splits.npz" for r in range(final + 1)],
        "decisions": [
            f"{RESULTS}/{system}/loop/round_{r}/decision.json" for r in explored
        ],
        "explorations": [f for r in explored for f in explore_files(system, r)],
        "test_datasets": [
            f"{RESULTS}/{system}/datasets/{part}.npz"
            for part in model_parts(SYSTEMS[system])
        ],
    }


def md_delta_runs(wildcards):
    """The MD study's runs of the (final) Δ model."""
    temperatures = dynamics_settings(config, wildcards.system).temperatures_K
    return [
        f"{RESULTS}/{wildcards.system}/dynamics/runs/delta_{temperature_label(t)}K.npz"
        for t in temperatures
    ]


def md_test_systems():
    """Loop systems whose final Δ model's MD frames make a second test set."""
    return [
        s
        for s in LOOP_SYSTEMS
        if s in MD_SYSTEMS
        and "delta" in dynamics_settings(config, s).models
        and active_learning_settings(config, s).md_test_frames > 0
    ]


def loop_targets():
    """The rounds' table and figure, the final Δ model file and the second test set."""
    out = [
        f"{RESULTS}/{system}/loop/{name}"
        for system in LOOP_SYSTEMS
        for name in ("rounds.csv", "rounds.png", "final/delta.npz")
    ]
    return out + [
        f"{RESULTS}/{system}/evaluation/md_test_metrics.csv"
        for system in md_test_systems()
    ]
