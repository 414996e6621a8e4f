"""The Δ decomposition of labelled complex data into sGDML datasets.

Keys of :func:`build_delta_datasets`:

- ``full``: W = {X, F, E} of the complex;
- ``fragment_k``: W_k = {x_k, F_k, E_k} of fragment k alone, only for fragments with more
  than one atom; ``extra["atom_indices"]`` holds the fragment's atom indices in X;
- ``nonint``: W0 = {X, F0, ΣE_k}, F0 the isolated-fragment forces placed at their atoms;
- ``binding``: Wb = {X, F − F0, E − ΣE_k}.

Single-atom fragments (ions) have a constant energy and zero force: they get no dataset.
Their indices and energies (kcal/mol) are stored in ``extra["constant_fragments"]`` and
``extra["constant_energies"]`` of ``nonint`` and ``binding`` (empty arrays if none), so
that E = Σ_{learned k} E_k(x_k) + Σ constant_energies + E_b(X) and F = F0 + F_b.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deltagdml.data.labelling import validate_labels
from deltagdml.data.systems import System
from deltagdml.errors import DatasetError
from deltagdml.gdml.dataset import Dataset, save_dataset

#: Largest energy spread / force (kcal/mol, kcal/mol/Å) accepted for a single-atom fragment.
CONSTANT_TOL = 1e-6


def build_delta_datasets(system: System, labels: dict, theory: str) -> dict[str, Dataset]:
    """Full, per-fragment, non-interacting and binding datasets (kcal/mol, Å)."""
    validate_labels(labels, system, source=f"labels of system '{system.name}'")
    missing = [key for key in ("E", "F", "E_frag_0") if key not in labels]
    if missing:
        raise DatasetError(
            f"labels of system '{system.name}': missing {missing}; complex and fragment "
            "labels are both needed"
        )
    R, z = np.asarray(labels["R"], dtype=float), system.z
    E, F = np.asarray(labels["E"], dtype=float), np.asarray(labels["F"], dtype=float)
    E0, F0 = np.zeros_like(E), np.zeros_like(F)
    out: dict[str, Dataset] = {
        "full": Dataset(R, z, F, E, name=f"{system.name}_full", theory=theory)
    }
    constant_fragments, constant_energies = [], []
    for k, idx in enumerate(system.fragments):
        E_k = np.asarray(labels[f"E_frag_{k}"], dtype=float)
        F_k = np.asarray(labels[f"F_frag_{k}"], dtype=float)
        E0 += E_k
        F0[:, idx] = F_k
        if len(idx) == 1:
            if np.ptp(E_k) > CONSTANT_TOL or np.abs(F_k).max() > CONSTANT_TOL:
                raise DatasetError(
                    f"labels of system '{system.name}': single-atom fragment {k} must have a "
                    "constant energy and zero forces"
                )
            constant_fragments.append(k)
            constant_energies.append(E_k.mean())
            continue
        out[f"fragment_{k}"] = Dataset(
            R[:, idx],
            z[idx],
            F_k,
            E_k,
            name=f"{system.name}_fragment_{k}",
            theory=f"{theory}; fragment {k} isolated (charge {system.fragment_charges[k]}, "
            f"multiplicity {system.fragment_multiplicities[k]})",
            extra={"atom_indices": np.asarray(idx, dtype=int)},
        )
    constants = {
        "constant_fragments": np.asarray(constant_fragments, dtype=int),
        "constant_energies": np.asarray(constant_energies, dtype=float),
    }
    out["nonint"] = Dataset(
        R,
        z,
        F0,
        E0,
        name=f"{system.name}_nonint",
        theory=f"{theory}; sum of isolated fragments",
        extra=dict(constants),
    )
    out["binding"] = Dataset(
        R,
        z,
        F - F0,
        E - E0,
        name=f"{system.name}_binding",
        theory=f"{theory}; complex minus isolated fragments",
        extra=dict(constants),
    )
    return out


def write_delta_datasets(
    datasets: dict[str, Dataset], out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Write each dataset atomically to ``out_dir/<key>.npz``; return the paths."""
    out_dir = Path(out_dir)
    paths = {key: out_dir / f"{key}.npz" for key in datasets}
    for key, ds in datasets.items():
        save_dataset(ds, paths[key])
    return paths
