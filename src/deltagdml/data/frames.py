"""Frames with energies and forces in the files ASE, its GUI and OVITO open.

Energies and forces arrive in kcal/mol and kcal/mol/Å and are written in eV and eV/Å,
ASE's units. The format follows the suffix: ``.xyz``/``.extxyz`` (extended XYZ) or
``.traj`` (ASE trajectory).
"""

from __future__ import annotations

import os
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from deltagdml.atomic_io import atomic_path
from deltagdml.errors import DeltaGDMLError
from deltagdml.units import EV_PER_KCAL_MOL

FORMATS = {".xyz": "extxyz", ".extxyz": "extxyz", ".traj": "traj"}


def ase_format(path: str | os.PathLike) -> str:
    """The ase.io format of ``path`` from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DeltaGDMLError(f"{path}: use one of {', '.join(FORMATS)} for frames")
    return FORMATS[suffix]


def write_frames(
    path: str | os.PathLike,
    z: np.ndarray,
    R: np.ndarray,
    E_kcal_mol: np.ndarray | None = None,
    F_kcal_mol_A: np.ndarray | None = None,
    info: dict[str, np.ndarray] | None = None,
) -> None:
    """Write geometries R (M, N, 3) Å, with energies and forces if given, atomically.

    ``info`` holds per-frame values (e.g. time) stored in each frame's ``atoms.info``.
    """
    fmt = ase_format(path)
    frames = []
    for i, positions in enumerate(R):
        atoms = Atoms(z, positions=positions)
        for key, values in (info or {}).items():
            atoms.info[key] = values[i].item()
        if E_kcal_mol is not None or F_kcal_mol_A is not None:
            atoms.calc = SinglePointCalculator(
                atoms,
                energy=None if E_kcal_mol is None else float(E_kcal_mol[i]) * EV_PER_KCAL_MOL,
                forces=None if F_kcal_mol_A is None else F_kcal_mol_A[i] * EV_PER_KCAL_MOL,
            )
        frames.append(atoms)
    with atomic_path(path) as tmp:
        ase.io.write(tmp, frames, format=fmt)
