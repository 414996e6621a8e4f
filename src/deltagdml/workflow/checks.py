"""Checks of a configuration before any job runs (at ``snakemake -n``): what the JSON
schema cannot see. Each failure is one :class:`~deltagdml.errors.ConfigError` naming the key."""

from __future__ import annotations

import re
from pathlib import Path

from deltagdml.analysis.descriptor_variance import validate_entries
from deltagdml.data.calculators import check_calculator_spec
from deltagdml.data.ingest import check_elements, read_labelled_geometries
from deltagdml.data.systems import System, model_parts
from deltagdml.dynamics.collective import cv_pair
from deltagdml.errors import ConfigError, DatasetError
from deltagdml.workflow.config import (
    analysis_settings,
    dynamics_settings,
    geometries_needed,
    learning_curve_sizes,
    load_system,
    part_overrides,
    sampling_settings,
    system_entry,
    training_settings,
)

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
    """Part names, every part's symmetry setting, and splits that fit the sampled frames."""
    if "dataset" not in system_entry(config, name):
        n_frames = sampling_settings(config, name).n_frames
        needed = geometries_needed(config, name)
        if needed > n_frames:
            raise ConfigError(
                f"system '{name}': n_train + n_valid + n_test = {needed} exceeds the "
                f"{n_frames} sampled frames (sampling.n_frames)"
            )
    overrides = part_overrides(config, name)
    parts = model_parts(system)
    unknown = sorted(set(overrides) - set(parts))
    if unknown:
        raise ConfigError(
            f"system '{name}': training.parts names {unknown}, but its models are {parts}"
        )
    for part in parts:
        setting = training_settings(config, name, part).symmetries
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
    needed = geometries_needed(config, name)
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
            sampler = sampling_settings(config, name).calculator
            check_calculator_spec(sampler.as_config(), where)
        _check_training(config, name, systems[name], base_dir)
        if "dataset" in entry and read_data:
            _check_user_data(config, name, systems[name], base_dir)
        else:
            n_chunks = (config.get("labelling") or {}).get("n_chunks", 1)
            n_frames = sampling_settings(config, name).n_frames
            if n_chunks > n_frames:
                raise ConfigError(
                    f"labelling.n_chunks = {n_chunks} exceeds the {n_frames} frames of "
                    f"system '{name}' (sampling.n_frames)"
                )
    return systems


def check_analysis(config: dict, systems: dict[str, System]) -> None:
    """Validate the ``analysis`` section against the configured systems (before any job)."""
    settings = analysis_settings(config)
    entries = settings.descriptor_entries or {}
    unknown = sorted(set(entries) - set(systems))
    if unknown:
        raise ConfigError(
            f"analysis.descriptor_entries: unknown system(s) {unknown}; configured: "
            f"{sorted(systems)}"
        )
    for name, spec in entries.items():
        validate_entries(spec, systems[name].fragments, systems[name].n_atoms, name)
    frames = settings.descriptor_frames
    frames = None if frames is None else list(frames)
    if frames is not None and (len(frames) != 2 or frames[0] == frames[1] or min(frames) < 0):
        raise ConfigError(
            f"analysis.descriptor_frames must be two different frame indices >= 0, got {frames!r}"
        )
    for name in systems if frames is not None else ():
        if "dataset" not in system_entry(config, name):
            n_frames = sampling_settings(config, name).n_frames
            if max(frames) >= n_frames:
                raise ConfigError(
                    f"analysis.descriptor_frames {frames!r}: system '{name}' has only "
                    f"{n_frames} frames (sampling.n_frames)"
                )
    amplification = settings.force_amplification
    if amplification is not None and not amplification > 0:
        raise ConfigError(f"analysis.force_amplification must be > 0, got {amplification!r}")
    for name in systems:
        learning_curve_sizes(config, name)


def check_dynamics(config: dict, systems: dict[str, System]) -> None:
    """Resolve every system's dynamics settings and its collective variables (atom and
    fragment indices) on the system's structure, before any job starts."""
    for name, system in systems.items():
        s = dynamics_settings(config, name)
        try:
            cv_pair(s.analysis, system, system.atoms.positions)
        except ConfigError as exc:
            raise ConfigError(f"system '{name}': {exc}") from exc
