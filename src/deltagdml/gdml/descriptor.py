"""Inverse-distance descriptor and its Jacobian.

For N atoms the descriptor holds D = N(N-1)/2 entries x_k = 1/|r_a - r_b| over the
pairs (a, b) = ``np.tril_indices(N, -1)`` — (1,0), (2,0), (2,1), (3,0), … .
Each entry depends on two atoms only, so the Jacobian is stored compactly as
G_k = x_k^3 (r_a - r_b): ∂x_k/∂r_a = -G_k and ∂x_k/∂r_b = +G_k.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp


@lru_cache(maxsize=32)
def pair_indices(n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Atom indices (a, b), a > b, of each descriptor entry."""
    return np.tril_indices(n_atoms, -1)


@lru_cache(maxsize=32)
def incidence(n_atoms: int) -> sp.csr_matrix:
    """Sparse N×D matrix mapping per-pair vectors onto atoms: -1 at a_k, +1 at b_k."""
    a, b = pair_indices(n_atoms)
    D = a.size
    rows = np.concatenate([a, b])
    cols = np.concatenate([np.arange(D), np.arange(D)])
    vals = np.concatenate([-np.ones(D), np.ones(D)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_atoms, D))


def descriptor(R: np.ndarray) -> np.ndarray:
    """Inverse pairwise distances of geometries ``R`` (M, N, 3) → (M, D)."""
    R = np.asarray(R, dtype=float)
    a, b = pair_indices(R.shape[-2])
    diff = R[..., a, :] - R[..., b, :]
    return 1.0 / np.sqrt(np.einsum("...kc,...kc->...k", diff, diff))


def descriptor_and_jacobian(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Descriptor (M, D) and compact Jacobian G (M, D, 3) of geometries (M, N, 3)."""
    R = np.asarray(R, dtype=float)
    a, b = pair_indices(R.shape[-2])
    diff = R[..., a, :] - R[..., b, :]
    x = 1.0 / np.sqrt(np.einsum("...kc,...kc->...k", diff, diff))
    return x, diff * (x**3)[..., None]


def dense_jacobian(G: np.ndarray) -> np.ndarray:
    """Expand compact Jacobians G (M, D, 3) to dense ∂x/∂r of shape (M, D, 3N)."""
    M, D, _ = G.shape
    n_atoms = int(round((1 + np.sqrt(1 + 8 * D)) / 2))
    a, b = pair_indices(n_atoms)
    J = np.zeros((M, D, n_atoms, 3))
    k = np.arange(D)
    J[:, k, a, :] = -G
    J[:, k, b, :] = G
    return J.reshape(M, D, 3 * n_atoms)


def jacobian_transpose_dot(G: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Cartesian vectors Jᵀ g (M, N, 3) from descriptor-space vectors g (M, D)."""
    M, D, _ = G.shape
    n_atoms = int(round((1 + np.sqrt(1 + 8 * D)) / 2))
    w = g[:, :, None] * G  # (M, D, 3)
    out = incidence(n_atoms) @ w.transpose(1, 0, 2).reshape(D, 3 * M)
    return out.reshape(n_atoms, M, 3).transpose(1, 0, 2)
