"""Molecular-dynamics stability study of the full and Δ models (the paper's Fig. 8).

Settings come from the config's ``dynamics`` section, layered as DEFAULTS < global
``dynamics`` < built-in preset (:data:`PRESETS`) < the system's own ``dynamics``.
"""

from __future__ import annotations

from typing import Any

from ..config import _merge, system_entry
from ..data.systems import System
from ..errors import ConfigError

MODELS = ("full", "delta")
DEFAULTS: dict[str, Any] = {
    "temperatures_K": [10, 100, 200, 300, 400],
    "models": ["full", "delta"],
    "timestep_fs": 0.5,
    "duration_ps": 1.5,
    "stride": 10,
    "friction_per_fs": 0.01,
    "start": "median_energy",
    "restraint": {"enabled": False, "k": 1.0},
    "stability": {
        "bond_stretch": 1.5,
        "min_distance_A": 0.5,
        "com_margin_A": 5.0,
        "max_energy_change_kcal_mol_per_atom": 5.0,
        "max_force_kcal_mol_A": 500.0,
    },
    "analysis": {
        "equilibration_ps": 0.25,
        "fes_bins": 25,
        "fes_smoothing_bins": 1.0,
        "msad_max_lag_fraction": 0.5,
        "guest_fragment": "auto",
        "cv2": {"kind": "min_distance"},
    },
}
#: Dynamics defaults of built-in systems (``preset`` names of :mod:`deltagdml.data.systems`).
PRESETS: dict[str, dict[str, Any]] = {
    "c60_buckycatcher": {"analysis": {"guest_fragment": 0, "cv2": {"kind": "pincer"}}},
}
CV2_KINDS = ("min_distance", "atoms", "centroids", "pincer")
STARTS = ("median_energy", "lowest_energy")


def dynamics_settings(config: dict, name: str) -> dict[str, Any]:
    """The resolved ``dynamics`` settings of system ``name``, checked."""
    preset = ((config.get("systems") or {}).get(name) or {}).get("preset")
    s = _merge(
        DEFAULTS,
        config.get("dynamics"),
        PRESETS.get(preset, {}),
        system_entry(config, name).get("dynamics"),
    )
    where = f"system '{name}': dynamics"
    if not s["models"] or set(s["models"]) - set(MODELS):
        raise ConfigError(f"{where}.models must be a non-empty subset of {MODELS}")
    if not s["temperatures_K"] or min(s["temperatures_K"]) <= 0:
        raise ConfigError(f"{where}.temperatures_K must be a non-empty list of positive numbers")
    if n_steps(s) < s["stride"]:
        raise ConfigError(f"{where}: duration_ps / timestep_fs is shorter than one stride")
    if s["start"] not in STARTS:
        raise ConfigError(f"{where}.start must be one of {STARTS}, got {s['start']!r}")
    kind = s["analysis"]["cv2"].get("kind")
    if kind not in CV2_KINDS:
        raise ConfigError(f"{where}.analysis.cv2.kind must be one of {CV2_KINDS}, got {kind!r}")
    return s


def check_dynamics(config: dict, systems: dict[str, System]) -> None:
    """Resolve every system's dynamics settings and its collective variables (atom and
    fragment indices) on the system's structure, before any job starts."""
    from .collective import cv_pair

    for name, system in systems.items():
        s = dynamics_settings(config, name)
        try:
            cv_pair(s["analysis"], system, system.atoms.positions)
        except ConfigError as exc:
            raise ConfigError(f"system '{name}': {exc}") from exc


def n_steps(settings: dict[str, Any]) -> int:
    """MD steps of one run."""
    return int(round(1000.0 * settings["duration_ps"] / settings["timestep_fs"]))


def temperature_label(temperature_K: float) -> str:
    """The temperature as it appears in file names and wildcards (e.g. ``300``)."""
    return f"{float(temperature_K):g}"
