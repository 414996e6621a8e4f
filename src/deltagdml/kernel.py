"""Symmetrised Matérn-5/2 Hessian kernel of sGDML in the gradient domain.

With d = x_i - P_p x_j, r = |d| and u = √5 r/σ, the covariance of the force at
geometry i with the force at geometry j is

    K_ij = Σ_p J_iᵀ H(d) (P_p J_j),   H(d) = 5/(3σ²) e^{-u} [(1+u) I - (5/σ²) d dᵀ],

summed over the descriptor permutations P_p of the molecule's permutation group.
``assemble_kernel`` fills the (3N·M)² matrix block column by block column with dense
BLAS calls; ``assemble_kernel_reference`` is the plain loop it is tested against.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from .parallel import available_threads

SQRT5 = np.sqrt(5.0)


def matern_coefficients(r: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Scalars (c1, c2) with H(d) = c1 I - c2 d dᵀ for distances ``r``."""
    u = SQRT5 * r / sigma
    base = (5.0 / (3.0 * sigma**2)) * np.exp(-u)
    return base * (1.0 + u), base * (5.0 / sigma**2)


def _block_budget(per_row_bytes: int, budget_bytes: int = 256 * 2**20) -> int:
    return max(1, budget_bytes // max(per_row_bytes, 1))


def assemble_kernel(
    X: np.ndarray,
    J: np.ndarray,
    tril_perms: np.ndarray,
    sigma: float,
    upper_only: bool = True,
    out: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    n_workers: int | None = None,
) -> np.ndarray:
    """Force–force kernel matrix (3N·M, 3N·M) for descriptors X (M, D), Jacobians J (M, D, 3N).

    Block K_ij is stored transposed at rows j, columns i (the matrix is symmetric), so
    each write is a run of contiguous rows. With ``upper_only`` only i ≥ j is computed:
    the C-ordered upper triangle holds K (i.e. the Fortran-ordered ``K.T`` holds the
    lower triangle LAPACK needs) and the strict lower triangle is left undefined.
    Columns are filled by ``n_workers`` threads (default: the cores available), each
    running single-threaded BLAS: the products here are too small for threaded BLAS.
    """
    M, D, n3 = J.shape
    P = tril_perms.shape[0]
    K = np.empty((M * n3, M * n3)) if out is None else out
    J_flat_by_atom = np.ascontiguousarray(J.transpose(1, 0, 2)).reshape(D, M * n3)
    Jt = np.ascontiguousarray(J.transpose(0, 2, 1))  # (M, 3N, D)
    JX = np.einsum("md,mdl->ml", X, J)  # J_iᵀ x_i
    X_sq = np.einsum("md,md->m", X, X)
    rows_per_chunk = _block_budget(8 * (D * n3 + 2 * P * n3))

    def fill_column(j: int) -> None:
        Xp = X[j][tril_perms]  # (P, D)
        Jp = J[j][tril_perms]  # (P, D, 3N)
        Jp_flat = Jp.reshape(P, D * n3)
        Jp_cols = np.ascontiguousarray(Jp.transpose(1, 0, 2)).reshape(D, P * n3)
        Jp_Xp = np.einsum("pd,pdl->pl", Xp, Jp)  # (P, 3N): (P_p J_j)ᵀ P_p x_j
        start = j if upper_only else 0
        for i0 in range(start, M, rows_per_chunk):
            i1 = min(M, i0 + rows_per_chunk)
            Xi = X[i0:i1]
            n_i = i1 - i0
            # |x_i - P_p x_j|² by the Gram trick; the kernel is smooth at r = 0.
            r2 = X_sq[i0:i1, None] + X_sq[j] - 2.0 * (Xi @ Xp.T)
            c1, c2 = matern_coefficients(np.sqrt(np.maximum(r2, 0.0)), sigma)
            # Identity part: J_iᵀ (Σ_p c1 P_p J_j).
            B = (c1 @ Jp_flat).reshape(n_i, D, n3)
            block = np.matmul(Jt[i0:i1], B)
            # Rank-one part: Σ_p c2 (J_iᵀ d)((P_p J_j)ᵀ d)ᵀ, with d = x_i - P_p x_j.
            a = (Xp @ J_flat_by_atom[:, i0 * n3 : i1 * n3]).reshape(P, n_i, n3)
            a = JX[i0:i1, None, :] - a.transpose(1, 0, 2)
            b = (Xi @ Jp_cols).reshape(n_i, P, n3) - Jp_Xp[None]
            block -= np.matmul((a * c2[:, :, None]).transpose(0, 2, 1), b)
            K[j * n3 : (j + 1) * n3, i0 * n3 : i1 * n3] = block.transpose(2, 0, 1).reshape(
                n3, n_i * n3
            )

    # Columns are independent and write disjoint rows of K; numpy releases the GIL in
    # its kernels, so threads keep every core busy on the many small matrix products.
    workers = n_workers or available_threads()
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        for done, _ in enumerate(pool.map(fill_column, range(M)), start=1):
            if progress is not None:
                progress(done, M)
    return K


def assemble_kernel_reference(
    X: np.ndarray, J: np.ndarray, tril_perms: np.ndarray, sigma: float
) -> np.ndarray:
    """Plain triple loop over (i, j, p) building H(d) explicitly; for tests only."""
    M, D, n3 = J.shape
    K = np.zeros((M * n3, M * n3))
    for i in range(M):
        for j in range(M):
            for perm in tril_perms:
                d = X[i] - X[j][perm]
                r = np.linalg.norm(d)
                u = SQRT5 * r / sigma
                H = (
                    (5.0 / (3.0 * sigma**2))
                    * np.exp(-u)
                    * ((1.0 + u) * np.eye(D) - (5.0 / sigma**2) * np.outer(d, d))
                )
                K[i * n3 : (i + 1) * n3, j * n3 : (j + 1) * n3] += J[i].T @ H @ J[j][perm]
    return K
