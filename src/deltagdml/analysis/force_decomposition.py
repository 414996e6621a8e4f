"""Full, isolated-fragment and binding forces of one representative frame (paper Fig. 1).

F = F0 + F_b: F0 holds the forces of each fragment computed alone (zero on a single-atom
fragment), F_b the binding forces. The representative frame is the geometry whose binding
energy E − ΣE_k is closest to the median over all geometries. Vectors are projected onto a
view plane (see :func:`view_basis`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from ase.data import chemical_symbols

from deltagdml.errors import DatasetError

#: Largest accepted |F − (F0 + F_b)| (kcal/mol/Å) in the stored datasets.
DECOMPOSITION_TOL = 1e-6
#: Elevation (degrees) of the view above the plane perpendicular to the fragment axis.
VIEW_TILT_DEG = 30.0


def representative_frame(E_b: np.ndarray) -> int:
    """Index of the geometry with binding energy closest to the median (first on ties)."""
    E_b = np.asarray(E_b, dtype=float)
    return int(np.argmin(np.abs(E_b - np.median(E_b))))


def check_decomposition(F: np.ndarray, F0: np.ndarray, Fb: np.ndarray) -> None:
    """Raise :class:`DatasetError` unless F = F0 + F_b within :data:`DECOMPOSITION_TOL`."""
    err = float(np.abs(F - F0 - Fb).max())
    if err > DECOMPOSITION_TOL:
        raise DatasetError(f"F differs from F0 + F_b by up to {err:.3g} kcal/mol/Å")


def nice_floor(x: float) -> float:
    """Largest number 1, 2 or 5 × 10^k not above ``x`` (> 0)."""
    if not x > 0:
        raise ValueError(f"need a positive number, got {x}")
    decade = 10.0 ** np.floor(np.log10(x))
    return float(max(m for m in (1.0, 2.0, 5.0, 10.0) if m * decade <= x * (1 + 1e-12)) * decade)


def amplification_factor(F: np.ndarray, Fb: np.ndarray) -> float:
    """Factor on F_b so that its largest arrow is about as long as the largest full force.

    The largest 1-2-5 number not above max|F| / max|F_b| (per-atom norms), at least 1.
    """
    f_max = float(np.linalg.norm(F, axis=-1).max())
    fb_max = float(np.linalg.norm(Fb, axis=-1).max())
    if fb_max == 0.0 or f_max <= fb_max:
        return 1.0
    return nice_floor(f_max / fb_max)


def view_basis(R: np.ndarray, fragments: list[np.ndarray]) -> np.ndarray:
    """Orthonormal rows (x, y, depth) of the view of geometry R (N, 3).

    A side view with both fragments separated: x is the largest principal axis of the
    geometry perpendicular to the axis joining the centroids of fragments 0 and 1; y is that
    fragment axis tilted by :data:`VIEW_TILT_DEG` towards the viewer, so that rings
    perpendicular to it show as ellipses instead of edge-on lines.
    """
    R = np.asarray(R, dtype=float)
    axis = R[fragments[1]].mean(axis=0) - R[fragments[0]].mean(axis=0)
    axis /= np.linalg.norm(axis)
    centred = R - R.mean(axis=0)
    perp = centred - np.outer(centred @ axis, axis)
    x = np.linalg.svd(perp, full_matrices=False)[2][0]  # largest principal axis ⊥ axis
    x -= (x @ axis) * axis
    x /= np.linalg.norm(x)
    t = np.deg2rad(VIEW_TILT_DEG)
    y = np.cos(t) * axis + np.sin(t) * np.cross(x, axis)
    return np.stack([x, y, np.cross(x, y)])


@dataclass
class ForceDecomposition:
    """One frame's geometry (Å) and forces (kcal/mol/Å) in the datasets' Cartesian frame."""

    frame: int
    binding_energy: float
    amplification: float
    R: np.ndarray  # (N, 3)
    F: np.ndarray
    F0: np.ndarray
    Fb: np.ndarray

    def in_view(self, fragments: list[np.ndarray]) -> dict[str, np.ndarray]:
        """R (centred), F, F0 and F_b in the view frame (x, y, depth) of :func:`view_basis`."""
        basis = view_basis(self.R, fragments)
        return {
            "R": (self.R - self.R.mean(axis=0)) @ basis.T,
            **{k: getattr(self, k) @ basis.T for k in ("F", "F0", "Fb")},
        }


def decompose(
    R: np.ndarray,
    F: np.ndarray,
    F0: np.ndarray,
    Fb: np.ndarray,
    E_b: np.ndarray,
    amplification: float | None = None,
) -> ForceDecomposition:
    """The representative frame of arrays (M, N, 3), checked and with its F_b factor."""
    t = representative_frame(E_b)
    check_decomposition(F[t], F0[t], Fb[t])
    return ForceDecomposition(
        frame=t,
        binding_energy=float(E_b[t]),
        amplification=(
            amplification_factor(F[t], Fb[t]) if amplification is None else float(amplification)
        ),
        R=np.asarray(R[t], dtype=float),
        F=np.asarray(F[t], dtype=float),
        F0=np.asarray(F0[t], dtype=float),
        Fb=np.asarray(Fb[t], dtype=float),
    )


def atom_table(dec: ForceDecomposition, z: np.ndarray, fragments: list[np.ndarray]) -> pd.DataFrame:
    """One row per atom: element, fragment, position, the three forces and their norms."""
    owner = np.empty(len(z), dtype=int)
    for k, idx in enumerate(fragments):
        owner[idx] = k
    table = pd.DataFrame(
        {
            "frame": dec.frame,
            "binding_energy_kcal_mol": dec.binding_energy,
            "amplification": dec.amplification,
            "atom": np.arange(len(z)),
            "element": [chemical_symbols[i] for i in z],
            "fragment": owner,
        }
    )
    for name, vec in (("R", dec.R), ("F", dec.F), ("F0", dec.F0), ("Fb", dec.Fb)):
        unit = "A" if name == "R" else "kcal_mol_A"
        for c, axis in enumerate("xyz"):
            table[f"{name}_{axis}_{unit}"] = vec[:, c]
        if name != "R":
            table[f"{name}_norm_{unit}"] = np.linalg.norm(vec, axis=1)
    return table
