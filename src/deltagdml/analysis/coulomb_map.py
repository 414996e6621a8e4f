"""The Coulomb matrix of one geometry with its fragment blocks (the paper's Fig. 2).

Atoms are ordered by fragment, so the intra-fragment blocks lie on the diagonal and the
inter-fragment entries off it. The table gives each block's number of entries and its
share of the squared Frobenius norm (diagonal entries excluded).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deltagdml.analysis.descriptor_variance import fragment_of_atom


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
