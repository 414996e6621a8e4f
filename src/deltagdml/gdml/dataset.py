"""sGDML-format datasets: in-memory container, validation, md5 fingerprint, file I/O.

Files hold ``R`` (M, N, 3), ``z`` (N,), ``F`` (M, N, 3), optionally ``E`` (M,) and
metadata strings ``name``, ``theory``, ``r_unit``, ``e_unit`` and ``md5``. In memory a
:class:`Dataset` is always in Å and kcal/mol; other known units are converted on load.
Files are opened with ``allow_pickle=False``: object arrays are refused, never unpickled.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deltagdml.atomic_io import save_npz_atomic
from deltagdml.errors import DatasetError
from deltagdml.gdml.dataset_checks import check_labelled, check_periodic, check_real
from deltagdml.npz_io import as_str, read_npz
from deltagdml.units import (
    ENERGY_UNITS_IN_KCAL_MOL,
    LENGTH_UNITS_IN_ANG,
    energy_scale,
    length_scale,
)
from deltagdml.version import __version__

R_UNIT = "Ang"
E_UNIT = "kcal/mol"


@dataclass
class Dataset:
    """Geometries with energy/force labels, in Å and kcal/mol (forces in kcal/mol/Å)."""

    R: np.ndarray
    z: np.ndarray
    F: np.ndarray
    E: np.ndarray | None = None
    name: str = "dataset"
    theory: str = "unknown"
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("R", "F", "E"):  # before the cast drops an imaginary part
            if np.iscomplexobj(getattr(self, key)):
                check_real(key, getattr(self, key), self.name)
        self.R = np.asarray(self.R, dtype=float)
        self.z = np.asarray(self.z).astype(int, copy=False)
        self.F = np.asarray(self.F, dtype=float)
        if self.E is not None:
            self.E = np.asarray(self.E, dtype=float).reshape(-1)
        validate_arrays(self.R, self.z, self.F, self.E, source=self.name)

    @property
    def n_geometries(self) -> int:
        return self.R.shape[0]

    @property
    def n_atoms(self) -> int:
        return self.z.shape[0]

    def md5(self) -> str:
        """sGDML's dataset fingerprint (md5 over z, R, E if present, F)."""
        return dataset_md5(self.R, self.z, self.F, self.E)

    def subset(self, idxs: np.ndarray) -> Dataset:
        """Dataset restricted to the geometries ``idxs``."""
        idxs = np.asarray(idxs, dtype=int)
        return Dataset(
            R=self.R[idxs],
            z=self.z,
            F=self.F[idxs],
            E=None if self.E is None else self.E[idxs],
            name=self.name,
            theory=self.theory,
        )


def validate_arrays(
    R: np.ndarray,
    z: np.ndarray,
    F: np.ndarray,
    E: np.ndarray | None,
    source: str = "dataset",
) -> None:
    """Check shapes and finiteness; raise :class:`DatasetError` naming ``source``."""
    if R.ndim != 3 or R.shape[2] != 3:
        raise DatasetError(f"{source}: 'R' must have shape (M, N, 3), got {R.shape}")
    if z.ndim != 1:
        raise DatasetError(f"{source}: 'z' must be one-dimensional, got shape {z.shape}")
    if z.shape[0] != R.shape[1]:
        raise DatasetError(
            f"{source}: 'z' has {z.shape[0]} atoms but 'R' has {R.shape[1]} atoms per geometry"
        )
    if np.any(z < 1) or np.any(z > 118):
        raise DatasetError(f"{source}: 'z' holds values outside 1..118: {np.unique(z)}")
    if F.shape != R.shape:
        raise DatasetError(f"{source}: 'F' has shape {F.shape} but 'R' has shape {R.shape}")
    if E is not None and E.shape[0] != R.shape[0]:
        raise DatasetError(
            f"{source}: 'E' has {E.shape[0]} entries but 'R' has {R.shape[0]} geometries"
        )
    for key, arr in (("R", R), ("F", F), ("E", E)):
        if arr is not None:
            check_real(key, arr, source)
    if R.shape[0] == 0:
        raise DatasetError(f"{source}: dataset holds no geometries")


def dataset_md5(R: np.ndarray, z: np.ndarray, F: np.ndarray, E: np.ndarray | None) -> str:
    """Fingerprint compatible with sGDML: md5 of the md5 digests of z, R, (E,) F."""
    h = hashlib.md5()
    arrays = [np.asarray(z, dtype=int), np.asarray(R, dtype=float)]
    if E is not None:
        arrays.append(np.asarray(E, dtype=float))
    arrays.append(np.asarray(F, dtype=float))
    for arr in arrays:
        h.update(hashlib.md5(np.ascontiguousarray(arr).ravel()).digest())
    return h.hexdigest()


#: Keys that mark a periodic dataset (sGDML stores its cell as ``lattice``).
PERIODIC_KEYS = ("lattice", "cell", "pbc")


def load_dataset(path: str | os.PathLike, ignore_pbc: bool = False) -> Dataset:
    """Read and validate an sGDML dataset ``.npz``; convert to Å and kcal/mol.

    Every read is checked physically (:mod:`.dataset_checks`); a periodic cell is refused
    unless ``ignore_pbc``.
    """
    path = str(path)
    data = read_npz(
        path,
        ("R", "z", "F"),
        "dataset",
        optional=("E", "r_unit", "e_unit", "name", "theory", *PERIODIC_KEYS),
    )
    for key in ("R", "z", "F", "E"):
        if key in data and (
            np.iscomplexobj(data[key]) or not np.issubdtype(data[key].dtype, np.number)
        ):
            raise DatasetError(
                f"{path}: key '{key}' must be real numbers, got dtype {data[key].dtype}"
            )
    pbc = data.get("pbc")
    periodic = "lattice" in data or (
        np.any(pbc) if pbc is not None else "cell" in data and np.any(data["cell"])
    )
    check_periodic(bool(periodic), path, ignore_pbc)
    R, F, z = data["R"].astype(float), data["F"].astype(float), data["z"]
    E = data["E"].astype(float) if "E" in data else None
    if not np.issubdtype(z.dtype, np.integer) and not np.all(np.mod(z, 1) == 0):
        raise DatasetError(f"{path}: 'z' must hold integer atomic numbers")
    r_unit = as_str(data["r_unit"]) if "r_unit" in data else R_UNIT
    e_unit = as_str(data["e_unit"]) if "e_unit" in data else E_UNIT
    try:
        R_scale = length_scale(r_unit)
    except KeyError:
        known = sorted(LENGTH_UNITS_IN_ANG)
        raise DatasetError(
            f"{path}: unknown length unit r_unit={r_unit!r}; known: {known}"
        ) from None
    try:
        E_scale = energy_scale(e_unit)
    except KeyError:
        known = sorted(ENERGY_UNITS_IN_KCAL_MOL)
        raise DatasetError(
            f"{path}: unknown energy unit e_unit={e_unit!r}; known: {known}"
        ) from None
    if E is not None:
        if E.ndim == 2 and E.shape[1] == 1:
            E = E[:, 0]
        if E.ndim != 1:
            raise DatasetError(f"{path}: 'E' must have shape (M,) or (M, 1), got {E.shape}")
    try:
        ds = Dataset(
            R=R * R_scale,
            z=z.astype(int),
            F=F * (E_scale / R_scale),
            E=None if E is None else E * E_scale,
            name=as_str(data["name"]) if "name" in data else Path(path).stem,
            theory=as_str(data["theory"]) if "theory" in data else "unknown",
        )
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    check_labelled(ds.R, ds.z, ds.E, ds.F, f"{path} (r_unit={r_unit!r}, e_unit={e_unit!r})")
    return ds


def save_dataset(ds: Dataset, path: str | os.PathLike) -> None:
    """Write ``ds`` atomically in the sGDML dataset layout (Å, kcal/mol)."""
    arrays: dict[str, np.ndarray] = {
        "type": np.array("d"),
        "code_version": np.array(f"deltagdml {__version__}"),
        "name": np.array(ds.name),
        "theory": np.array(ds.theory),
        "R": ds.R,
        "z": ds.z,
        "F": ds.F,
        "r_unit": np.array(R_UNIT),
        "e_unit": np.array(E_UNIT),
        "F_min": np.array(ds.F.min()),
        "F_max": np.array(ds.F.max()),
        "F_mean": np.array(ds.F.mean()),
        "F_var": np.array(ds.F.var()),
        "md5": np.array(ds.md5()),
    }
    if ds.E is not None:
        arrays.update(
            E=ds.E,
            E_min=np.array(ds.E.min()),
            E_max=np.array(ds.E.max()),
            E_mean=np.array(ds.E.mean()),
            E_var=np.array(ds.E.var()),
        )
    arrays.update(ds.extra)
    save_npz_atomic(path, **arrays)
