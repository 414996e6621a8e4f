# Shared definitions: systems, wildcard constraints, input functions.
from deltagdml.config import check_config, model_parts, step_config, system_entry

SYSTEMS = check_config(config)
RESULTS = config["results"]
ENV = "../../envs/deltagdml.yaml"


wildcard_constraints:
    system="|".join(SYSTEMS),
    part=r"full|binding|fragment_\d+",
    dataset=r"full|binding|nonint|fragment_\d+",
    chunk=r"\d+",


def params_for(*sections):
    """Rule params: the config sections a step of one system depends on."""
    return lambda wildcards: step_config(config, wildcards.system, sections)


def labels_input(wildcards):
    """Labels come from sampling + labelling, or from the user's own dataset."""
    if "dataset" in system_entry(config, wildcards.system):
        return f"{RESULTS}/{wildcards.system}/data/ingested_labels.npz"
    return f"{RESULTS}/{wildcards.system}/data/labels.npz"


def label_chunks(wildcards):
    n = config["labelling"]["n_chunks"]
    return [f"{RESULTS}/{wildcards.system}/data/labels/chunk_{i}.npz" for i in range(n)]


def model_files(wildcards):
    return {
        f"model_{part}": f"{RESULTS}/{wildcards.system}/models/{part}.npz"
        for part in model_parts(SYSTEMS[wildcards.system])
    }


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
