"""The workflow configuration resolved into settings, per system and per model.

Settings are layered: the defaults of :mod:`deltagdml.settings` < the config's global
section < a built-in preset < the system's own section (< ``training.parts.<part>`` for
one model). The JSON schema (workflow/schemas/config.schema.yaml) checks types and
ranges first; :mod:`deltagdml.workflow.checks` checks what a schema cannot.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from deltagdml.data.systems import DEFAULT_SYSTEMS, System, model_parts, system_from_config
from deltagdml.errors import ConfigError
from deltagdml.gdml.solvers.choice import training_mem_mb
from deltagdml.settings import (
    ActiveLearningSettings,
    AnalysisSettings,
    CalculatorSettings,
    DynamicsSettings,
    SamplingSettings,
    TrainingSettings,
    UncertaintySettings,
    build,
    defaults,
)

SYSTEM_KEYS = ("structure", "fragments", "charges", "multiplicities", "charge", "multiplicity")
#: Dynamics settings of built-in systems (``preset`` names of :mod:`deltagdml.data.systems`).
DYNAMICS_PRESETS: dict[str, dict[str, Any]] = {
    "c60_buckycatcher": {"analysis": {"guest_fragment": 0, "cv2": {"kind": "pincer"}}},
}
MD_MODELS = ("full", "delta")
CV2_KINDS = ("min_distance", "atoms", "centroids", "pincer")
MD_STARTS = ("median_energy", "lowest_energy")
#: Learning-curve sizes, as fractions of n_train, when fewer than two configured sizes fit.
FALLBACK_FRACTIONS = (0.25, 0.5, 1.0)


def merge(*layers: dict) -> dict:
    out: dict = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
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
        entry = merge(DEFAULT_SYSTEMS[preset], entry)
    return entry


def system_label(config: dict, name: str) -> str:
    """The system's name in figures: its ``label`` (a preset's by default), else its key
    with spaces."""
    return system_entry(config, name).get("label") or name.replace("_", " ")


def system_labels(config: dict, names) -> dict[str, str]:
    """:func:`system_label` of each of ``names``, by name."""
    return {name: system_label(config, name) for name in names}


def sampling_settings(config: dict, name: str) -> SamplingSettings:
    """Global sampling settings overridden by the system's, checked.

    ``frames_per_replica`` is resolved (default: ``n_frames`` shared evenly over the
    replicas, one per temperature) and ``calculator`` is the sampler's spec: the
    reference method unless set.
    """
    s = merge(
        defaults(SamplingSettings),
        config.get("sampling"),
        system_entry(config, name).get("sampling"),
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
    s["calculator"] = CalculatorSettings.from_config(s["calculator"])
    return build(SamplingSettings, s)


def reference_settings(config: dict) -> CalculatorSettings:
    """The reference method, which labels every geometry (``reference``)."""
    return CalculatorSettings.from_config(config.get("reference"))


def _training_layers(config: dict, name: str) -> tuple[dict, dict]:
    """Global training settings overridden by the system's, and the per-part overrides."""
    settings = merge(
        defaults(TrainingSettings),
        config.get("training"),
        system_entry(config, name).get("training"),
    )
    return settings, settings.pop("parts", None) or {}


def training_settings(config: dict, name: str, part: str = "full") -> TrainingSettings:
    """Training settings of model ``part`` of system ``name``: global, then the system's,
    then its ``training.parts.<part>`` entry."""
    settings, overrides = _training_layers(config, name)
    return build(TrainingSettings, merge(settings, overrides.get(part)))


def part_overrides(config: dict, name: str) -> dict[str, dict]:
    """The ``training.parts`` entries of system ``name`` (models with their own settings)."""
    return _training_layers(config, name)[1]


def part_train_sizes(config: dict, name: str, parts: list[str]) -> dict[str, int]:
    """n_train of each of ``parts``: its ``training.parts`` value, else the global one."""
    return {part: training_settings(config, name, part).n_train for part in parts}


def train_pool_size(config: dict, name: str) -> int:
    """Geometries set aside for training: the largest n_train of any model."""
    sizes = part_train_sizes(config, name, list(part_overrides(config, name)))
    return max([training_settings(config, name).n_train, *sizes.values()])


def geometries_needed(config: dict, name: str) -> int:
    """Training pool + validation + test geometries of system ``name``."""
    t = training_settings(config, name)
    return train_pool_size(config, name) + t.n_valid + t.n_test


def load_system(config: dict, name: str, base_dir: str | Path = ".") -> System:
    """Build the :class:`System` of a configured system."""
    entry = system_entry(config, name)
    return system_from_config(name, {k: entry[k] for k in SYSTEM_KEYS if k in entry}, base_dir)


def system_priorities(config: dict, systems: dict[str, System]) -> dict[str, int]:
    """Scheduling priority of each system's jobs: systems ranked by the size of their
    full kernel matrix, (3N · n_train)², largest first (highest priority), so that the
    longest chain of jobs starts first; ties keep the config's order."""
    size = {
        name: (3 * system.n_atoms * training_settings(config, name).n_train) ** 2
        for name, system in systems.items()
    }
    ranked = sorted(size, key=lambda name: -size[name])
    return {name: len(ranked) - 1 - i for i, name in enumerate(ranked)}


def training_memory_mb(
    system: System, part: str, settings: TrainingSettings, threads: int, n_train: int | None = None
) -> int:
    """Memory (MiB) a job training model ``part`` of ``system`` requests from the scheduler.

    The estimate of the solver :func:`~deltagdml.gdml.solvers.choice.choose_solver` picks within
    ``max_memory_gb`` for ``n_train`` (default: the configured size) training geometries,
    with ``max_perms`` permutations as the upper bound of the symmetry group.
    """
    n_atoms = system.n_atoms if part in ("full", "binding") else 0
    if part.startswith("fragment_"):
        n_atoms = len(system.fragments[int(part.removeprefix("fragment_"))])
    n_perms = 1 if settings.symmetries == "none" else settings.max_perms
    return training_mem_mb(
        n_train or settings.n_train,
        n_atoms,
        n_perms,
        settings.max_memory_gb,
        settings.solver,
        threads,
    )


def learning_curve_memory_mb(config: dict, name: str, system: System, threads: int) -> int:
    """Memory (MiB) a learning-curve job of system ``name`` requests: the largest
    :func:`training_memory_mb` over its parts and sizes (a size below n_train can need the
    dense solver where n_train needs the iterative one)."""
    return max(
        training_memory_mb(system, part, training_settings(config, name, part), threads, n)
        for part in model_parts(system)
        for n in learning_curve_sizes(config, name)
    )


def dynamics_settings(config: dict, name: str) -> DynamicsSettings:
    """The ``dynamics`` settings of system ``name``, checked: defaults < global section <
    built-in preset (:data:`DYNAMICS_PRESETS`) < the system's own section."""
    preset = ((config.get("systems") or {}).get(name) or {}).get("preset")
    s = merge(
        defaults(DynamicsSettings),
        config.get("dynamics"),
        DYNAMICS_PRESETS.get(preset, {}),
        system_entry(config, name).get("dynamics"),
    )
    where = f"system '{name}': dynamics"
    if not s["models"] or set(s["models"]) - set(MD_MODELS):
        raise ConfigError(f"{where}.models must be a non-empty subset of {MD_MODELS}")
    if not s["temperatures_K"] or min(s["temperatures_K"]) <= 0:
        raise ConfigError(f"{where}.temperatures_K must be a non-empty list of positive numbers")
    if s["start"] not in MD_STARTS:
        raise ConfigError(f"{where}.start must be one of {MD_STARTS}, got {s['start']!r}")
    kind = s["analysis"]["cv2"].get("kind")
    if kind not in CV2_KINDS:
        raise ConfigError(f"{where}.analysis.cv2.kind must be one of {CV2_KINDS}, got {kind!r}")
    settings = build(DynamicsSettings, s)
    if settings.n_steps < settings.stride:
        raise ConfigError(f"{where}: duration_ps / timestep_fs is shorter than one stride")
    return settings


def uncertainty_settings(config: dict) -> UncertaintySettings:
    """The ``uncertainty`` section over the defaults."""
    return build(
        UncertaintySettings, merge(defaults(UncertaintySettings), config.get("uncertainty"))
    )


def active_learning_settings(config: dict, name: str) -> ActiveLearningSettings:
    """The ``active_learning`` settings of system ``name`` (defaults < global section < the
    system's own); ``temperatures_K`` resolved to the MD study's when unset."""
    s = merge(
        defaults(ActiveLearningSettings),
        config.get("active_learning"),
        system_entry(config, name).get("active_learning"),
    )
    if s["temperatures_K"] is None:
        s["temperatures_K"] = list(dynamics_settings(config, name).temperatures_K)
    settings = build(ActiveLearningSettings, s)
    if settings.n_steps < settings.stride:
        raise ConfigError(
            f"system '{name}': active_learning: duration_ps / timestep_fs is shorter than one "
            "stride"
        )
    return settings


def temperature_label(temperature_K: float) -> str:
    """The temperature as it appears in file names and wildcards (e.g. ``300``)."""
    return f"{float(temperature_K):g}"


def analysis_settings(config: dict) -> AnalysisSettings:
    """The ``analysis`` section of ``config`` over the defaults."""
    section = config.get("analysis") or {}
    known = set(defaults(AnalysisSettings))
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"analysis: unknown key(s) {unknown}; known: {sorted(known)}")
    return build(AnalysisSettings, merge(defaults(AnalysisSettings), section))


def learning_curve_sizes(config: dict, name: str) -> list[int]:
    """Sorted distinct learning-curve sizes of system ``name`` that fit its training split.

    Sizes above the full model's ``n_train`` are dropped. If fewer than two remain (e.g. a tiny
    test config), n_train/4, n_train/2 and n_train are used instead.
    """
    requested = analysis_settings(config).learning_curve_sizes
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in requested):
        raise ConfigError(
            f"analysis.learning_curve_sizes must be positive integers, got {list(requested)!r}"
        )
    n_train = training_settings(config, name, "full").n_train
    sizes = sorted({n for n in requested if n <= n_train})
    if len(sizes) < 2:
        sizes = sorted({max(1, round(n_train * f)) for f in FALLBACK_FRACTIONS})
    if len(sizes) < 2:
        raise ConfigError(f"system '{name}': n_train = {n_train} is too small for a learning curve")
    return sizes


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
        settings = {training_settings(config, name, part).symmetries for part in parts}
        files += sorted(value for value in settings if value not in ("auto", "none"))
    return files


def step_config(config: dict, name: str, sections: tuple[str, ...]) -> dict:
    """The part of the config one workflow step of system ``name`` reads, from the global
    config and from the system's own section.

    Each of ``sections`` is a top-level key or a dotted path into one (``dynamics.analysis``);
    ``*`` matches any key (``training.parts.*.n_train``). Passed to rules as ``params`` so
    that Snakemake reruns exactly the steps whose settings changed.
    """
    paths = [section.split(".") for section in sections]
    entry = (config.get("systems") or {}).get(name) or {}
    own = [[key] for key in ("preset", "dataset", "fragment_labels", *SYSTEM_KEYS)]
    heads = dict.fromkeys(path[0] for path in paths)
    out = _pick({key: config[key] for key in heads if key in config}, paths)
    out["systems"] = {name: _pick(entry, own + paths)}
    return out


def _pick(tree: dict, paths: list[list[str]]) -> dict:
    """The parts of ``tree`` at ``paths`` (lists of keys), in the tree's order; a section
    of which nothing is picked is left out."""
    out = {}
    for key, value in tree.items():
        rests = [path[1:] for path in paths if path[0] in (key, "*")]
        if [] in rests:
            out[key] = copy.deepcopy(value)
        elif rests and isinstance(value, dict) and (picked := _pick(value, rests)):
            out[key] = picked
    return out


def setting_paths(section: str, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    """:func:`step_config` paths of every setting of ``section`` (sampling, training or
    dynamics) but those ``without``; ``training.parts`` is not one of them."""
    cls = {"sampling": SamplingSettings, "training": TrainingSettings, "dynamics": DynamicsSettings}
    return tuple(f"{section}.{key}" for key in defaults(cls[section]) if key not in without)


def selection_cv_settings(config: dict, name: str) -> dict[str, Any]:
    """The collective variables frame selection of system ``name`` covers, resolved: the
    guest fragment and the second CV of ``dynamics.analysis``, none of the MD study's own
    settings."""
    analysis = dynamics_settings(config, name).analysis
    return {"guest_fragment": analysis.guest_fragment, "cv2": copy.deepcopy(dict(analysis.cv2))}


def export_source_path(src: str | Path) -> None:
    """Put ``src`` first on the ``PYTHONPATH`` that workflow jobs inherit, so that they
    import the same package as the workflow, also from a conda env without it."""
    paths = [str(src), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
