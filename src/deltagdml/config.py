"""Resolve the workflow configuration: per-system settings and cross-field checks.

The JSON schema (workflow/schemas/config.schema.yaml) checks types and ranges; this
module checks what a schema cannot: that presets exist, that the requested splits fit
in the data, and which models a system needs.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

from .data.calculators import check_calculator_spec
from .data.systems import DEFAULT_SYSTEMS, System, system_from_config
from .errors import ConfigError, DatasetError
from .solvers import training_mem_mb

SAMPLING_DEFAULTS: dict[str, Any] = {
    "calculator": None,
    "temperatures_K": [300.0],
    "timestep_fs": 0.5,
    "n_frames": 400,
    "frames_per_replica": None,
    "selection": "time",
    "stride": 10,
    "equilibration_steps": 200,
    "friction_per_fs": 0.01,
    "restraint": {"enabled": True, "k": 1.0},
}
TRAINING_DEFAULTS: dict[str, Any] = {
    "n_train": 100,
    "n_valid": 50,
    "n_test": 200,
    "sigmas": [2, 5, 10, 20, 40, 80, 160],
    "lam": 1e-10,
    "symmetries": "auto",
    "max_perms": 2048,
    "patience": 2,
    "solver": "auto",
    "max_memory_gb": 16,
    "solver_tol": 1e-4,
}
SYSTEM_KEYS = ("structure", "fragments", "charges", "multiplicities", "charge", "multiplicity")


def _merge(*layers: dict) -> dict:
    out: dict = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = _merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def system_entry(config: dict, name: str) -> dict:
    """The system's own config with its preset expanded."""
    systems = config.get("systems") or {}
    if name not in systems:
        raise ConfigError(f"unknown system '{name}'; configured: {sorted(systems)}")
    entry = dict(systems[name] or {})
    preset = entry.pop("preset", None)
    if preset is not None:
        if preset not in DEFAULT_SYSTEMS:
            raise ConfigError(
                f"system '{name}': unknown preset '{preset}'; known: {sorted(DEFAULT_SYSTEMS)}"
            )
        entry = _merge(DEFAULT_SYSTEMS[preset], entry)
    return entry


def sampling_settings(config: dict, name: str) -> dict:
    """Global sampling settings overridden by the system's, checked.

    ``frames_per_replica`` is resolved (default: ``n_frames`` shared evenly over the
    replicas, one per temperature) and ``calculator`` is the sampler's spec: the
    reference method unless set.
    """
    s = _merge(
        SAMPLING_DEFAULTS, config.get("sampling"), system_entry(config, name).get("sampling")
    )
    n_replicas = len(s["temperatures_K"])
    if n_replicas < 1 or min(s["temperatures_K"]) <= 0:
        raise ConfigError(
            f"system '{name}': sampling.temperatures_K must be a non-empty list of positive "
            f"temperatures, got {s['temperatures_K']}"
        )
    if s["frames_per_replica"] is None:
        s["frames_per_replica"] = -(-s["n_frames"] // n_replicas)
    share = -(-s["n_frames"] // n_replicas)
    if share > s["frames_per_replica"]:
        raise ConfigError(
            f"system '{name}': sampling.n_frames = {s['n_frames']} asks {share} frames of each "
            f"of {n_replicas} replica(s), more than sampling.frames_per_replica = "
            f"{s['frames_per_replica']}"
        )
    if s["calculator"] is None:
        s["calculator"] = config.get("reference")
    return s


def training_settings(config: dict, name: str, part: str | None = None) -> dict:
    """Global training settings overridden by the system's, then by the part's.

    Without ``part`` the settings are those of the full model and of every part without
    its own entry in ``training.parts``; ``parts`` then holds the per-part overrides.
    """
    settings = _merge(
        TRAINING_DEFAULTS, config.get("training"), system_entry(config, name).get("training")
    )
    overrides = settings.pop("parts", None) or {}
    if part is not None:
        return _merge(settings, overrides.get(part))
    settings["parts"] = overrides
    entry = system_entry(config, name)
    if "dataset" not in entry:
        n_frames = sampling_settings(config, name)["n_frames"]
        needed = train_pool_size(settings) + settings["n_valid"] + settings["n_test"]
        if needed > n_frames:
            raise ConfigError(
                f"system '{name}': n_train + n_valid + n_test = {needed} exceeds the "
                f"{n_frames} sampled frames (sampling.n_frames)"
            )
    return settings


def train_pool_size(settings: dict) -> int:
    """Geometries set aside for training: the largest n_train of any part."""
    sizes = [settings["n_train"]]
    sizes += [o["n_train"] for o in settings["parts"].values() if "n_train" in (o or {})]
    return max(sizes)


def part_train_sizes(settings: dict, parts: list[str]) -> dict[str, int]:
    """n_train of each of ``parts``: its ``training.parts`` value, else the global one."""
    return {p: (settings["parts"].get(p) or {}).get("n_train", settings["n_train"]) for p in parts}


def load_system(config: dict, name: str, base_dir: str | Path = ".") -> System:
    """Build the :class:`System` of a configured system."""
    entry = system_entry(config, name)
    return system_from_config(name, {k: entry[k] for k in SYSTEM_KEYS if k in entry}, base_dir)


def model_parts(system: System) -> list[str]:
    """Models to train: 'full', one 'fragment_k' per multi-atom fragment, 'binding'."""
    parts = ["full"]
    parts += [f"fragment_{k}" for k, idx in enumerate(system.fragments) if len(idx) > 1]
    return parts + ["binding"]


def training_memory_mb(
    system: System, part: str, settings: dict, threads: int, n_train: int | None = None
) -> int:
    """Memory (MiB) a job training model ``part`` of ``system`` requests from the scheduler.

    The estimate of the solver :func:`~deltagdml.solvers.choose_solver` picks within
    ``max_memory_gb`` for ``n_train`` (default: the configured size) training geometries,
    with ``max_perms`` permutations as the upper bound of the symmetry group.
    """
    n_atoms = system.n_atoms if part in ("full", "binding") else 0
    if part.startswith("fragment_"):
        n_atoms = len(system.fragments[int(part.removeprefix("fragment_"))])
    n_perms = 1 if settings["symmetries"] == "none" else settings["max_perms"]
    return training_mem_mb(
        n_train or settings["n_train"],
        n_atoms,
        n_perms,
        settings["max_memory_gb"],
        settings["solver"],
        threads,
    )


def user_files(
    config: dict, name: str, kinds: tuple[str, ...], parts: tuple[str, ...] = ()
) -> list[str]:
    """Files of the user's that system ``name`` reads, as paths relative to the working
    directory: ``structure`` files, its ``data`` (dataset and fragment labels), and the
    ``symmetries`` permutation files of the models ``parts``. Workflow rules take them as
    inputs, so that editing one reruns what depends on it."""
    entry = system_entry(config, name)
    files: list[str] = []
    if "structure" in kinds:
        spec = entry.get("structure")
        while isinstance(spec, dict):
            spec = spec.get("base")
        if isinstance(spec, str) and Path(spec).suffix:  # S22 names have no suffix
            files.append(spec)
    if "data" in kinds and "dataset" in entry:
        files += [entry["dataset"], *(entry.get("fragment_labels") or [])]
    if "symmetries" in kinds:
        settings = {training_settings(config, name, part)["symmetries"] for part in parts}
        files += sorted(value for value in settings if value not in ("auto", "none"))
    return files


def step_config(config: dict, name: str, sections: tuple[str, ...]) -> dict:
    """The part of the config one workflow step of system ``name`` depends on.

    Passed to rules as ``params`` so that Snakemake reruns exactly the steps whose
    settings changed.
    """
    entry = (config.get("systems") or {}).get(name) or {}
    own = ("preset", "dataset", "fragment_labels", *SYSTEM_KEYS, *sections)
    out = {key: copy.deepcopy(config[key]) for key in sections if key in config}
    out["systems"] = {name: {k: copy.deepcopy(v) for k, v in entry.items() if k in own}}
    return out


#: Folders of the source tree that results must never be written into.
SOURCE_FOLDERS = (
    ".ci",
    ".git",
    ".snakemake",
    "benchmarks",
    "docs",
    "envs",
    "src",
    "tests",
    "workflow",
)


def export_source_path(src: str | Path) -> None:
    """Put ``src`` first on the ``PYTHONPATH`` that workflow jobs inherit, so that they
    import the same package as the workflow, also from a conda env without it."""
    paths = [str(src), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


def schema_error_line(error: Exception) -> str:
    """One line for a config that breaks the JSON schema: the key path and the problem.

    ``error`` is Snakemake's validation error, whose text holds jsonschema's report.
    """
    text = str(error)
    message = re.search(r"ValidationError: (.*?)(?:\n\s*\n|\nFailed validating|$)", text, re.S)
    instance = re.search(r"On instance((?:\[[^\]]*\])*)", text)
    if message is None:
        return " ".join(text.split())
    keys = re.findall(r"\[['\"]?([^'\"\]]*)['\"]?\]", instance.group(1)) if instance else []
    where = ".".join(keys) or "(top level)"
    return f"config key '{where}': {' '.join(message.group(1).split())}"


def check_results_path(results: object, workdir: str | Path, source_dir: str | Path) -> Path:
    """The resolved ``results`` folder, refused where it would mix with or clobber files.

    Refused: an empty value, the filesystem root, the working directory itself, the source
    tree's root or any folder above it, and any folder inside the source tree's code,
    workflow, tests or git folders (:data:`SOURCE_FOLDERS`).
    """
    if not isinstance(results, str) or not results.strip() or "\0" in results:
        raise ConfigError(f"results: must name a folder, got {results!r}")
    path = (Path(workdir) / results).resolve()
    source = Path(source_dir).resolve()
    if path == Path(path.anchor):
        problem = "is the filesystem root"
    elif path == Path(workdir).resolve():
        problem = "is the working directory itself; use a subfolder such as 'results'"
    elif path == source or path in source.parents:
        problem = f"would write next to the workflow's own files in {source}"
    elif any(path.is_relative_to(source / folder) for folder in SOURCE_FOLDERS):
        problem = f"lies inside the source tree ({path.relative_to(source)})"
    else:
        return path
    raise ConfigError(f"results: '{results}' {problem}")


def _check_training(config: dict, name: str, system: System, base_dir: str | Path) -> None:
    """Part names and every part's symmetry setting."""
    overrides = training_settings(config, name)["parts"]
    parts = model_parts(system)
    unknown = sorted(set(overrides) - set(parts))
    if unknown:
        raise ConfigError(
            f"system '{name}': training.parts names {unknown}, but its models are {parts}"
        )
    for part in parts:
        setting = training_settings(config, name, part)["symmetries"]
        if setting in ("auto", "none"):
            continue
        path = Path(base_dir) / setting
        if not setting.endswith(".npy") or not path.is_file():
            raise ConfigError(
                f"system '{name}', model '{part}': training.symmetries must be 'auto', "
                f"'none' or an existing .npy file of permutations, got {setting!r}"
            )


def _check_user_data(config: dict, name: str, system: System, base_dir: str | Path) -> None:
    """A user dataset (and fragment label files): readable, labelled, large enough."""
    from .data.ingest import check_elements, read_labelled_geometries

    entry = system_entry(config, name)
    files = entry.get("fragment_labels") or []
    if files and len(files) != system.n_fragments:
        raise ConfigError(
            f"system '{name}'.fragment_labels: {len(files)} files for {system.n_fragments} "
            "fragments"
        )
    try:
        R, z, _, _ = read_labelled_geometries(Path(base_dir) / entry["dataset"])
        check_elements(z, system.z, entry["dataset"], f"system '{name}'")
        for k, path in enumerate(files):
            R_k, z_k, _, _ = read_labelled_geometries(Path(base_dir) / path)
            check_elements(z_k, system.z[system.fragments[k]], path, f"fragment {k}")
            if len(R_k) != len(R):
                raise DatasetError(f"{path}: {len(R_k)} geometries, but the dataset has {len(R)}")
    except DatasetError as exc:
        raise ConfigError(f"system '{name}'.dataset: {exc}") from exc
    t = training_settings(config, name)
    needed = train_pool_size(t) + t["n_valid"] + t["n_test"]
    if needed > len(R):
        raise ConfigError(
            f"system '{name}': n_train + n_valid + n_test = {needed} exceeds the {len(R)} "
            f"geometries of {entry['dataset']}"
        )


def check_config(
    config: dict,
    base_dir: str | Path = ".",
    source_dir: str | Path | None = None,
    read_data: bool = True,
) -> dict[str, System]:
    """Validate every system up front; return them by name.

    With ``source_dir`` (the workflow's folder), the ``results`` path is checked too. With
    ``read_data``, user datasets are read and checked in full (once, when the workflow is
    planned; not again inside each job).
    """
    if source_dir is not None:
        check_results_path(config.get("results"), base_dir, source_dir)
    check_calculator_spec(config.get("reference"), "reference")
    systems = {}
    for name in config.get("systems") or {}:
        systems[name] = load_system(config, name, base_dir)
        entry = system_entry(config, name)
        for key, paths in (
            ("dataset", [entry.get("dataset")]),
            ("fragment_labels", entry.get("fragment_labels") or []),
        ):
            for path in paths:
                if path is not None and not (Path(base_dir) / path).is_file():
                    raise ConfigError(f"system '{name}'.{key}: file '{path}' not found")
        if "dataset" not in entry:
            where = "sampling.calculator"
            if "calculator" in (entry.get("sampling") or {}):
                where = f"systems.{name}.{where}"
            check_calculator_spec(sampling_settings(config, name)["calculator"], where)
        _check_training(config, name, systems[name], base_dir)
        if "dataset" in entry and read_data:
            _check_user_data(config, name, systems[name], base_dir)
        else:
            n_chunks = (config.get("labelling") or {}).get("n_chunks", 1)
            n_frames = sampling_settings(config, name)["n_frames"]
            if n_chunks > n_frames:
                raise ConfigError(
                    f"labelling.n_chunks = {n_chunks} exceeds the {n_frames} frames of "
                    f"system '{name}' (sampling.n_frames)"
                )
    return systems
