"""Paper analyses: descriptor variance (Fig. 3), binding statistics (Fig. 5), force
decomposition (Fig. 1) and learning curves of the full and Δ models.

Settings come from the config's optional ``analysis`` section merged over :data:`DEFAULTS`.
"""

from __future__ import annotations

import copy
from typing import Any

from ..config import sampling_settings, system_entry, training_settings
from ..data.systems import System
from ..errors import ConfigError

DEFAULTS: dict[str, Any] = {
    # random frame pairs for the per-entry standard deviations of ΔD (Fig. 3C)
    "descriptor_frame_pairs": 1000,
    # the two frames [t1, t2] of Fig. 3A/B; None: first and last frame
    "descriptor_frames": None,
    # per system {first: [a, b], second: [a, b], inter: [a, b]}: overrides of the entries
    # whose time series Fig. 3A shows; missing keys are chosen automatically
    "descriptor_entries": {},
    # factor on the binding forces in Fig. 1; None: chosen automatically
    "force_amplification": None,
    # training-set sizes of the learning curves (sizes above a system's n_train are dropped)
    "learning_curve_sizes": [25, 50, 100],
}
#: Learning-curve sizes, as fractions of n_train, when fewer than two configured sizes fit.
FALLBACK_FRACTIONS = (0.25, 0.5, 1.0)


def analysis_settings(config: dict) -> dict[str, Any]:
    """The ``analysis`` section of ``config`` merged over :data:`DEFAULTS`."""
    section = config.get("analysis") or {}
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"analysis: unknown key(s) {unknown}; known: {sorted(DEFAULTS)}")
    return {**copy.deepcopy(DEFAULTS), **copy.deepcopy(section)}


def learning_curve_sizes(config: dict, name: str) -> list[int]:
    """Sorted distinct learning-curve sizes of system ``name`` that fit its training split.

    Sizes above the full model's ``n_train`` are dropped. If fewer than two remain (e.g. a tiny
    test config), n_train/4, n_train/2 and n_train are used instead.
    """
    requested = analysis_settings(config)["learning_curve_sizes"]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in requested):
        raise ConfigError(
            f"analysis.learning_curve_sizes must be positive integers, got {requested!r}"
        )
    n_train = training_settings(config, name, "full")["n_train"]
    sizes = sorted({n for n in requested if n <= n_train})
    if len(sizes) < 2:
        sizes = sorted({max(1, round(n_train * f)) for f in FALLBACK_FRACTIONS})
    if len(sizes) < 2:
        raise ConfigError(f"system '{name}': n_train = {n_train} is too small for a learning curve")
    return sizes


def check_analysis(config: dict, systems: dict[str, System]) -> None:
    """Validate the ``analysis`` section against the configured systems (before any job)."""
    from .descriptor_variance import validate_entries

    settings = analysis_settings(config)
    entries = settings["descriptor_entries"] or {}
    unknown = sorted(set(entries) - set(systems))
    if unknown:
        raise ConfigError(
            f"analysis.descriptor_entries: unknown system(s) {unknown}; configured: "
            f"{sorted(systems)}"
        )
    for name, spec in entries.items():
        validate_entries(spec, systems[name].fragments, systems[name].n_atoms, name)
    frames = settings["descriptor_frames"]
    if frames is not None and (len(frames) != 2 or frames[0] == frames[1] or min(frames) < 0):
        raise ConfigError(
            f"analysis.descriptor_frames must be two different frame indices >= 0, got {frames!r}"
        )
    for name in systems if frames is not None else ():
        if "dataset" not in system_entry(config, name):
            n_frames = sampling_settings(config, name)["n_frames"]
            if max(frames) >= n_frames:
                raise ConfigError(
                    f"analysis.descriptor_frames {frames!r}: system '{name}' has only "
                    f"{n_frames} frames (sampling.n_frames)"
                )
    amplification = settings["force_amplification"]
    if amplification is not None and not amplification > 0:
        raise ConfigError(f"analysis.force_amplification must be > 0, got {amplification!r}")
    for name in systems:
        learning_curve_sizes(config, name)
