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
from deltagdml.errors import DatasetError, DeltaGDMLError
from deltagdml.gdml.dataset_checks import check_geometries, check_periodic, frames_text
from deltagdml.units import EV_PER_KCAL_MOL

FORMATS = {".xyz": "extxyz", ".extxyz": "extxyz", ".traj": "traj"}


def ase_format(path: str | os.PathLike) -> str:
    """The ase.io format of ``path`` from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DeltaGDMLError(f"{path}: use one of {', '.join(FORMATS)} for frames")
    return FORMATS[suffix]


def frame_geometries(
    frames: list[Atoms], source: str, ignore_pbc: bool = False, labelled: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(z, R)`` (R in Å) of frames read by ase.io, checked like a dataset's geometries.

    Every frame must hold frame 0's atoms and no periodic cell (unless ``ignore_pbc``);
    positions must be real, finite and plausible (:mod:`deltagdml.gdml.dataset_checks`).
    """
    if not frames:
        raise DatasetError(f"{source}: holds no geometries")
    z = frames[0].numbers
    for i, atoms in enumerate(frames):
        if not np.array_equal(atoms.numbers, z):
            raise DatasetError(f"{source}: frame {i} has different atoms than frame 0")
    periodic = np.flatnonzero([atoms.pbc.any() for atoms in frames])
    if periodic.size:
        check_periodic(True, f"{source}: {frames_text(periodic, len(frames))}", ignore_pbc)
    R = np.stack([atoms.get_positions() for atoms in frames])
    check_geometries(R, z, source, labelled=labelled)
    return z, R


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
