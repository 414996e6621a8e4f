"""Binding energies and binding-force magnitudes across systems (paper Fig. 5).

From each system's binding dataset W_b = {X, F − F0, E − ΣE_k} over all its geometries:
the binding energies E_b = E − ΣE_k (kcal/mol, one per geometry) and the binding-force
magnitudes |F_b| = |F − F0| (kcal/mol/Å, one per atom and geometry).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deltagdml.errors import DatasetError
from deltagdml.gdml.dataset import Dataset

QUANTITIES = {
    "binding_energy": "kcal/mol",
    "binding_force_magnitude": "kcal/mol/Ang",
}
STAT_COLUMNS = ("n", "mean", "std", "min", "q1", "median", "q3", "max")


def binding_values(binding: Dataset) -> dict[str, np.ndarray]:
    """E_b per geometry and |F_b| per atom and geometry, keyed like :data:`QUANTITIES`."""
    if binding.E is None:
        raise DatasetError(f"{binding.name}: the binding dataset has no energies")
    return {
        "binding_energy": binding.E,
        "binding_force_magnitude": np.linalg.norm(binding.F, axis=2).ravel(),
    }


def describe(values: np.ndarray) -> dict[str, float]:
    """Count, mean, sample std (ddof = 1), min, quartiles (linear interpolation), max."""
    v = np.asarray(values, dtype=float).ravel()
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
        "min": float(v.min()),
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "max": float(v.max()),
    }


def statistics_table(values: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """One row per system and quantity from ``{system: binding_values(...)}``."""
    rows = [
        {"system": system, "quantity": q, "unit": QUANTITIES[q], **describe(per_system[q])}
        for system, per_system in values.items()
        for q in QUANTITIES
    ]
    return pd.DataFrame(rows)
