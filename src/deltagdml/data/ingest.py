"""Bring your own data: labels from an sGDML ``.npz`` or any ASE-readable trajectory.

Trajectory files (extended XYZ, ASE ``.traj``, ...) must carry energies and forces in
eV and eV/Å (as ASE stores them); they are converted to kcal/mol. Fragment labels come
from one file per fragment (same formats, same geometries) or from a calculator.
"""

from __future__ import annotations

import os
from pathlib import Path

import ase.io
import numpy as np

from deltagdml.data.frames import frame_geometries
from deltagdml.data.labelling import Progress, geometry_labels, label_fragments, validate_labels
from deltagdml.data.systems import System
from deltagdml.errors import DatasetError
from deltagdml.gdml.dataset import load_dataset
from deltagdml.gdml.dataset_checks import check_energy_forces, check_real
from deltagdml.settings import CalculatorSettings
from deltagdml.units import KCAL_MOL_PER_EV

#: Largest allowed difference (Å) between a fragment file's and the complex's geometry.
GEOMETRY_TOL = 1e-4


def read_labelled_geometries(
    path: str | os.PathLike, ignore_pbc: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(R, z, E, F)`` in Å and kcal/mol from an sGDML ``.npz`` or an ASE trajectory.

    Both are checked physically (:mod:`deltagdml.gdml.dataset_checks`); a periodic cell is
    refused unless ``ignore_pbc``.
    """
    path = str(path)
    if not Path(path).is_file():
        raise DatasetError(f"{path}: file not found")
    if path.endswith(".npz"):
        ds = load_dataset(path, ignore_pbc=ignore_pbc)
        if ds.E is None:
            raise DatasetError(f"{path}: dataset has no energies 'E'; they are required")
        return ds.R, ds.z, ds.E, ds.F
    try:
        frames = ase.io.read(path, index=":")
    except Exception as exc:  # ase.io raises many types for unreadable files
        raise DatasetError(f"{path}: cannot read as a trajectory with ase.io: {exc}") from exc
    z, R = frame_geometries(frames, path, ignore_pbc=ignore_pbc, labelled=True)
    E, F = np.empty(len(frames)), np.empty((len(frames), len(z), 3))
    for i, atoms in enumerate(frames):
        try:
            E[i] = atoms.get_potential_energy()
            F[i] = atoms.get_forces()
        except Exception as exc:  # no calculator / property missing
            raise DatasetError(f"{path}: frame {i} lacks energy or forces ({exc})") from exc
    E, F = E * KCAL_MOL_PER_EV, F * KCAL_MOL_PER_EV
    check_real("E", E, path)
    check_real("F", F, path)
    check_energy_forces(R, E, F, path)
    return R, z, E, F


def check_elements(z: np.ndarray, expected: np.ndarray, path: str, what: str) -> None:
    """Refuse atoms whose number or element order differs from ``expected``."""
    if len(z) != len(expected):
        raise DatasetError(f"{path}: {len(z)} atoms, but {what} has {len(expected)}")
    bad = np.flatnonzero(z != expected)
    if bad.size:
        i = bad[0]
        raise DatasetError(
            f"{path}: element order differs from {what}: atom {i} has Z={z[i]}, "
            f"expected Z={expected[i]} ({bad.size} atoms differ)"
        )


def ingest_dataset(
    path: str | os.PathLike,
    system: System,
    fragment_files: list[str | os.PathLike] | None = None,
    calculator: CalculatorSettings | None = None,
    progress: Progress | None = None,
    ignore_pbc: bool = False,
) -> dict[str, np.ndarray]:
    """Labels (see :mod:`.labelling`) for the complex geometries and labels in ``path``.

    Fragment labels are read from ``fragment_files`` (one per fragment, geometries equal
    to the complex's within ``GEOMETRY_TOL``), else computed with ``calculator`` if given,
    else left out (add them later with ``label_fragments`` + ``combine_labels``). A
    periodic cell in any file is refused unless ``ignore_pbc``.
    """
    path = str(path)
    R, z, E, F = read_labelled_geometries(path, ignore_pbc)
    check_elements(z, system.z, path, f"system '{system.name}'")
    labels = {**geometry_labels(system, R), "E": E, "F": F}
    if fragment_files is not None:
        if len(fragment_files) != system.n_fragments:
            raise DatasetError(
                f"system '{system.name}': {len(fragment_files)} fragment files given for "
                f"{system.n_fragments} fragments"
            )
        for k, (fpath, idx) in enumerate(zip(fragment_files, system.fragments, strict=True)):
            fpath = str(fpath)
            R_k, z_k, E_k, F_k = read_labelled_geometries(fpath, ignore_pbc)
            check_elements(z_k, system.z[idx], fpath, f"fragment {k} of '{system.name}'")
            if len(R_k) != len(R):
                raise DatasetError(f"{fpath}: {len(R_k)} geometries, but {path} has {len(R)}")
            dev = np.abs(R_k - R[:, idx]).max(axis=(1, 2))
            if np.any(dev > GEOMETRY_TOL):
                i = int(np.argmax(dev > GEOMETRY_TOL))
                raise DatasetError(
                    f"{fpath}: geometry {i} differs from fragment {k} in {path} by "
                    f"{dev[i]:.2e} Å (tolerance {GEOMETRY_TOL} Å)"
                )
            labels[f"E_frag_{k}"], labels[f"F_frag_{k}"] = E_k, F_k
    elif calculator is not None:
        fragments = label_fragments(system, R, calculator, progress)
        labels.update({k: v for k, v in fragments.items() if "_frag_" in k})
    validate_labels(labels, system, source=path)
    return labels
