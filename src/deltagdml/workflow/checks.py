"""Checks of a configuration before any job runs (at ``snakemake -n``): what the JSON
schema cannot see. Each failure is one :class:`~deltagdml.errors.ConfigError` naming the key."""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Iterable
from pathlib import Path

import jsonschema
import numpy as np
import yaml

from deltagdml.analysis.descriptor_variance import validate_entries
from deltagdml.data.calculators import check_calculator_spec
from deltagdml.data.delta import build_delta_datasets
from deltagdml.data.ingest import ingest_dataset
from deltagdml.data.systems import System, model_parts
from deltagdml.dynamics.collective import cv_pair
from deltagdml.errors import ConfigError, DatasetError
from deltagdml.gdml.symmetry import validate_permutations
from deltagdml.settings import CalculatorSettings
from deltagdml.workflow.config import (
    active_learning_settings,
    analysis_settings,
    dynamics_settings,
    geometries_needed,
    learning_curve_sizes,
    load_system,
    part_overrides,
    reference_settings,
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
#: Most MD steps × atoms one job may run: about 60 × the paper's longest run (500 ps at
#: 0.5 fs of the 148-atom C60 complex, 1.5e8); beyond it a job would not finish.
MAX_MD_ATOM_STEPS = 10**10


def schema_error_line(error: Exception) -> str:
    """One line for a config that breaks the JSON schema: the key path and the problem.

    ``error`` is Snakemake's validation error, whose text holds jsonschema's report, or a
    :class:`ConfigError`, whose text is kept (on one line).
    """
    text = str(error)
    message = re.search(r"ValidationError: (.*?)(?:\n\s*\n|\nFailed validating|$)", text, re.S)
    instance = re.search(r"On instance((?:\[[^\]]*\])*)", text)
    if message is None:
        return " ".join(text.split())
    keys = re.findall(r"\[['\"]?([^'\"\]]*)['\"]?\]", instance.group(1)) if instance else []
    where = ".".join(keys) or "(top level)"
    return f"config key '{where}': {' '.join(message.group(1).split())}"


class _UniqueKeyLoader(yaml.FullLoader):
    """Snakemake's YAML loader (``FullLoader``) refusing a key repeated within one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        lines: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in lines:
                raise ConfigError(
                    f"duplicate key '{key}' at line {line} (first at line {lines[key]}); "
                    "YAML would silently keep only the last"
                )
            lines[key] = line
        return super().construct_mapping(node, deep)


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object that refuses a repeated key."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"duplicate key '{key}'; JSON would silently keep only the last")
        out[key] = value
    return out


def check_unique_keys(paths: Iterable[str | Path]) -> None:
    """Refuse a config file (JSON, else YAML, as Snakemake reads them) that repeats a key."""
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        try:
            try:
                json.loads(text, object_pairs_hook=_unique_pairs)
            except json.JSONDecodeError:
                yaml.load(text, Loader=_UniqueKeyLoader)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


def check_integers(config: dict, schema_path: str | Path) -> None:
    """Refuse a float where the schema asks for an integer (``n_frames: 1.0e12``), which JSON
    Schema accepts when its fraction is zero. Run after the schema validation."""
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    base = jsonschema.validators.validator_for(schema)
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = jsonschema.validators.extend(base, type_checker=checker)(schema)
    error = jsonschema.exceptions.best_match(strict.iter_errors(config))
    if error is not None:
        where = ".".join(str(key) for key in error.absolute_path) or "(top level)"
        raise ConfigError(f"config key '{where}': {error.message}")


def check_results_path(results: object, workdir: str | Path, source_dir: str | Path) -> Path:
    """The resolved ``results`` folder, refused where it would mix with or clobber files.

    Refused: an empty value, a leading ``~`` (never expanded: it would make a folder named
    ``~``), an existing file, the filesystem root, the working directory itself, the source
    tree's root or any folder above it, and any folder inside the source tree's code,
    workflow, tests or git folders (:data:`SOURCE_FOLDERS`).
    """
    if not isinstance(results, str) or not results.strip() or "\0" in results:
        raise ConfigError(f"results: must name a folder, got {results!r}")
    if results.startswith("~"):
        raise ConfigError(
            f"results: '{results}' starts with '~', which is not expanded (a folder named '~' "
            "would be made); write the full path"
        )
    path = (Path(workdir) / results).resolve()
    source = Path(source_dir).resolve()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        problem = f"names an existing file ({existing}), not a folder"
    elif path == Path(path.anchor):
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
    """Part names, every part's symmetries, and splits that fit the sampled frames."""
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
        _check_symmetries(config, name, system, part, base_dir)


def _check_symmetries(
    config: dict, name: str, system: System, part: str, base_dir: str | Path
) -> None:
    """Model ``part``'s ``training.symmetries``: 'auto', 'none', or a .npy file holding an
    element-preserving permutation group of the part's atoms (as training checks it)."""
    setting = training_settings(config, name, part).symmetries
    if setting in ("auto", "none"):
        return
    where = f"system '{name}', model '{part}': training.symmetries"
    path = Path(base_dir) / setting
    if not setting.endswith(".npy") or not path.is_file():
        raise ConfigError(
            f"{where} must be 'auto', 'none' or an existing .npy file of permutations, "
            f"got {setting!r}"
        )
    z = system.z
    if part.startswith("fragment_"):
        z = z[system.fragments[int(part.removeprefix("fragment_"))]]
    try:
        validate_permutations(np.load(path, allow_pickle=False), z)
    except (OSError, ValueError) as exc:  # DatasetError included
        raise ConfigError(f"{where} '{setting}': {exc}") from exc


def _check_user_data(config: dict, name: str, system: System, base_dir: str | Path) -> None:
    """A user dataset and its fragment label files, checked as the ingest and Δ-dataset jobs
    check them (readable, labelled, the system's atoms, each file the geometries of the
    fragment it is listed for, a single-atom fragment's labels a constant energy and zero
    force), and large enough for the splits."""
    entry = system_entry(config, name)
    files = entry.get("fragment_labels") or []
    if files and len(files) != system.n_fragments:
        raise ConfigError(
            f"system '{name}'.fragment_labels: {len(files)} files for {system.n_fragments} "
            "fragments"
        )
    dataset = Path(base_dir) / entry["dataset"]
    try:
        n_geometries = len(ingest_dataset(dataset, system)["R"])
    except DatasetError as exc:
        raise ConfigError(f"system '{name}'.dataset: {exc}") from exc
    if files:
        try:
            labels = ingest_dataset(dataset, system, [Path(base_dir) / f for f in files])
            build_delta_datasets(system, labels, theory="fragment_labels")
        except DatasetError as exc:
            raise ConfigError(f"system '{name}'.fragment_labels: {exc}") from exc
    needed = geometries_needed(config, name)
    if needed > n_geometries:
        raise ConfigError(
            f"system '{name}': n_train + n_valid + n_test = {needed} exceeds the "
            f"{n_geometries} geometries of {entry['dataset']}"
        )


def _check_spin(settings: CalculatorSettings, system: System, where: str, fragments: bool) -> None:
    """gfnff has no spin: refuse it for an open-shell complex, or fragment when it labels the
    fragments too (``fragments``)."""
    if settings.name != "gfnff":
        return
    states = [("the complex", system.z, system.charge, system.multiplicity)]
    if fragments:
        states += [
            (f"fragment {k}", system.z[idx], q, m)
            for k, idx, q, m in zip(
                range(system.n_fragments),
                system.fragments,
                system.fragment_charges,
                system.fragment_multiplicities,
                strict=True,
            )
        ]
    for what, z, charge, multiplicity in states:
        if multiplicity != 1:
            raise ConfigError(
                f"{where}: gfnff has no spin, but {what} of system '{system.name}' is open-shell "
                f"({int(z.sum()) - charge} electrons, multiplicity {multiplicity}); use tblite"
            )


def _check_md_lengths(config: dict, name: str, system: System) -> None:
    """Refuse an MD job (sampling replica, MD study run, exploration run) longer than
    :data:`MAX_MD_ATOM_STEPS` steps × atoms, which would run for ever."""
    runs = []
    if "dataset" not in system_entry(config, name):
        s = sampling_settings(config, name)
        runs.append(
            (
                "one sampling replica: sampling.equilibration_steps + frames_per_replica × "
                "stride (frames_per_replica: sampling.n_frames over the replicas unless set) = "
                f"{s.equilibration_steps} + {s.frames_per_replica} × {s.stride}",
                s.equilibration_steps + s.frames_per_replica * s.stride,
            )
        )
    d = dynamics_settings(config, name)
    if d.enabled:
        runs.append(("one MD run: dynamics.duration_ps / dynamics.timestep_fs", d.n_steps))
    a = active_learning_settings(config, name)
    if a.enabled:
        runs.append(("one exploration run: active_learning.duration_ps / timestep_fs", a.n_steps))
    for what, steps in runs:
        if steps * system.n_atoms > MAX_MD_ATOM_STEPS:
            raise ConfigError(
                f"system '{name}': {what} = {steps:.3g} MD steps of {system.n_atoms} atoms, "
                f"beyond the {MAX_MD_ATOM_STEPS:.0e} steps × atoms a job can finish"
            )


def _check_loop_ratios(config: dict, name: str) -> None:
    """Refuse an acceptance ratio above the ratio where exploration runs stop."""
    a = active_learning_settings(config, name)
    if a.enabled and a.accept_ratio > a.stop_ratio:
        raise ConfigError(
            f"system '{name}': active_learning.accept_ratio = {a.accept_ratio:g} exceeds "
            f"stop_ratio = {a.stop_ratio:g}; a run stops before it could be accepted"
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
        if "fragment_labels" in entry and "dataset" not in entry:
            raise ConfigError(
                f"system '{name}'.fragment_labels: given without 'dataset'; fragment labels "
                "belong to your own dataset (sampled frames are labelled with 'reference')"
            )
        _check_spin(reference_settings(config), systems[name], "reference", fragments=True)
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
            _check_spin(sampler, systems[name], where, fragments=False)
        _check_training(config, name, systems[name], base_dir)
        _check_md_lengths(config, name, systems[name])
        _check_loop_ratios(config, name)
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
