"""The Coulomb matrix of one geometry with its fragment blocks (the paper's Fig. 2).

Atoms are ordered by fragment, so the intra-fragment blocks lie on the diagonal and the
inter-fragment entries off it. The table gives each block's number of entries and its
share of the squared Frobenius norm (diagonal entries excluded).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..atomic_io import atomic_path
from ..config import load_system
from ..dataset import load_dataset
from ..errors import DatasetError
from .descriptor_variance import coulomb_matrix, fragment_of_atom


def block_table(C: np.ndarray, fragments: list[np.ndarray]) -> pd.DataFrame:
    """Entries and share of ‖C‖²_F (off-diagonal) of every fragment block pair (k ≤ l)."""
    n = C.shape[0]
    owner = fragment_of_atom(fragments, n)
    off = ~np.eye(n, dtype=bool)
    total = np.sum(C[off] ** 2)
    rows = []
    for k in range(len(fragments)):
        for m in range(k, len(fragments)):
            mask = off & (
                ((owner[:, None] == k) & (owner[None, :] == m))
                | ((owner[:, None] == m) & (owner[None, :] == k))
            )
            rows.append(
                {
                    "block": "intra" if k == m else "inter",
                    "fragment_a": k,
                    "fragment_b": m,
                    "n_entries": int(mask.sum()),
                    "frobenius2_share": float(np.sum(C[mask] ** 2) / total) if total else np.nan,
                    "mean_entry_E_h": float(C[mask].mean()) if mask.any() else np.nan,
                }
            )
    return pd.DataFrame(rows)


def run(
    config: dict,
    system_name: str,
    full_path: str,
    csv_path: str | os.PathLike,
    png: str,
    pdf: str,
    frame: int = 0,
    base_dir: str = ".",
) -> pd.DataFrame:
    """Fig. 2 of one system: Coulomb matrix of geometry ``frame`` of the full dataset."""
    from .figures import plot_coulomb_matrix

    system = load_system(config, system_name, base_dir)
    ds = load_dataset(full_path)
    if not np.array_equal(ds.z, system.z):
        raise DatasetError(
            f"{full_path}: the dataset holds other atoms than system '{system_name}'"
        )
    C = coulomb_matrix(ds.R[frame], ds.z)
    table = block_table(C, system.fragments)
    table.insert(0, "frame", frame)
    table.insert(0, "system", system_name)
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    names = [
        system.atoms[f].get_chemical_formula() + {0: "", 1: "⁺", -1: "⁻"}.get(q, f"({q:+d})")
        for f, q in zip(system.fragments, system.fragment_charges, strict=True)
    ]
    plot_coulomb_matrix(system_name, C, system.fragments, names, table, png, pdf)
    return table
