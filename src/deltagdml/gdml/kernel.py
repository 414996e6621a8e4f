"""Symmetrised Matérn-5/2 Hessian kernel of sGDML in the gradient domain.

With d = x_i - P_p x_j, r = |d| and u = √5 r/σ, the covariance of the force at
geometry i with the force at geometry j is

    K_ij = Σ_p J_iᵀ H(d) (P_p J_j),   H(d) = 5/(3σ²) e^{-u} [(1+u) I - (5/σ²) d dᵀ],

summed over the descriptor permutations P_p of the molecule's permutation group.
``KernelBlocks`` computes blocks, ``assemble_kernel`` fills the (3N·M)² matrix with them
block column by block column; ``assemble_kernel_reference`` is the plain loop both are
tested against.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from deltagdml.gdml.descriptor import incidence, jacobian_transpose_dot, pair_indices
from deltagdml.gdml.parallel import available_threads

SQRT5 = np.sqrt(5.0)


def matern(r: float | np.ndarray, sigma: float) -> float | np.ndarray:
    """Matérn-5/2 kernel κ(r) = (1 + u + u²/3) e^{−u}, u = √5 r/σ (r and σ in Å⁻¹)."""
    u = SQRT5 * np.asarray(r, dtype=float) / sigma
    return (1.0 + u + u * u / 3.0) * np.exp(-u)


def min_sq_distances(A: np.ndarray, B: np.ndarray, tril_perms: np.ndarray) -> np.ndarray:
    """min_p |a_i − P_p b_j|² (len(A), len(B)) between descriptors A and B over the
    descriptor permutations, by the Gram trick, one permutation at a time (memory
    len(A)·len(B)); clipped at 0."""
    a_sq, b_sq = np.einsum("md,md->m", A, A), np.einsum("md,md->m", B, B)
    d2 = np.full((len(A), len(B)), np.inf)
    for perm in tril_perms:
        np.minimum(d2, a_sq[:, None] + b_sq[None, :] - 2.0 * A @ B[:, perm].T, out=d2)
    return np.maximum(d2, 0.0)


def matern_coefficients(r: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Scalars (c1, c2) with H(d) = c1 I - c2 d dᵀ for distances ``r``."""
    u = SQRT5 * r / sigma
    base = (5.0 / (3.0 * sigma**2)) * np.exp(-u)
    return base * (1.0 + u), base * (5.0 / sigma**2)


class KernelBlocks:
    """Blocks K_ij = Σ_p J_iᵀ H(x_i − P_p x_j) P_p J_j of the kernel of one training set.

    Holds the per-geometry arrays every block needs; :meth:`column` prepares block column j
    and :meth:`block` computes K_ij for a run of rows i, with dense BLAS products. Without
    symmetries (only the identity permutation) the identity part J_iᵀ J_j is assembled from
    the compact Jacobians instead: each descriptor entry couples two atoms only, so it costs
    O(D) per block instead of O(D·(3N)²), which is what makes large molecules affordable.

    Only the Matérn coefficients depend on σ. With ``cache_bytes`` > 0 the σ-independent
    terms of a block (:meth:`terms`: the distances and the vectors of the rank-one part;
    without symmetries also J_iᵀ J_j) are kept the first time they are computed, while
    their total stays within ``cache_bytes``, and the same blocks at any other σ reuse
    them: one instance serves a whole σ search. Cached or not, a block is computed by the
    same operations, so its value is bitwise the same.
    """

    def __init__(
        self, X: np.ndarray, J: np.ndarray, tril_perms: np.ndarray, cache_bytes: int = 0
    ) -> None:
        M, D, n3 = J.shape
        self.X, self.J, self.tril_perms = X, J, tril_perms
        self.D, self.n3, self.P = D, n3, tril_perms.shape[0]
        self.X_sq = np.einsum("md,md->m", X, X)
        self.sparse = self.P == 1 and np.array_equal(tril_perms[0], np.arange(D))
        if self.sparse:
            n_atoms = n3 // 3
            self.pairs = pair_indices(n_atoms)
            # ∂x_d/∂r_b = G_d for the pair (a, b), a > b, and ∂x_d/∂r_a = −G_d
            self.G = J.reshape(M, D, n_atoms, 3)[:, np.arange(D), self.pairs[1]]
            self.abs_incidence = abs(incidence(n_atoms))
        else:
            self.Jt = np.ascontiguousarray(J.transpose(0, 2, 1))  # (M, 3N, D)
            self.J_by_atom = np.ascontiguousarray(J.transpose(1, 0, 2)).reshape(D, M * n3)
            self.JX = np.einsum("md,mdl->ml", X, J)  # J_iᵀ x_i
        self.cache_bytes = cache_bytes
        self.cached_bytes = 0
        self._cache: dict[tuple[int, int, int], tuple[np.ndarray, ...]] = {}
        self._lock = threading.Lock()

    def rows_per_chunk(self, budget_bytes: int) -> int:
        """Rows i per call of :meth:`block` whose work arrays fit in ``budget_bytes``."""
        per_row = 8 * self.n3 * (self.n3 + 4 * self.P) + 8 * self.D * (
            18 if self.sparse else self.n3
        )
        return max(1, budget_bytes // per_row)

    def column(self, j: int) -> tuple:
        """The terms of training geometry j that every block K_ij of its column uses: j,
        the permuted descriptors P_p x_j (P, D) and Jacobians P_p J_j (P, D, 3N; None
        without symmetries)."""
        Xp = self.X[j][self.tril_perms]
        return j, Xp, None if self.sparse else self.J[j][self.tril_perms]

    def terms(self, column: tuple, i0: int, i1: int) -> tuple[np.ndarray, ...]:
        """The σ-independent terms of rows i0 ≤ i < i1 of ``column`` j: distances
        r = |x_i − P_p x_j| (i1 − i0, P), the vectors a = J_iᵀ d and b = (P_p J_j)ᵀ d of
        the rank-one part, d = x_i − P_p x_j (each (i1 − i0, P, 3N)), and without
        symmetries J_iᵀ J_j; from the cache when they are in it."""
        key = (column[0], i0, i1)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        terms = self._terms(column, i0, i1)
        size = sum(t.nbytes for t in terms)
        with self._lock:
            if self.cached_bytes + size <= self.cache_bytes:
                self._cache[key] = terms
                self.cached_bytes += size
        return terms

    def _terms(self, column: tuple, i0: int, i1: int) -> tuple[np.ndarray, ...]:
        j, Xp, Jp = column
        D, n3, P = self.D, self.n3, self.P
        Xi, n_i = self.X[i0:i1], i1 - i0
        # |x_i - P_p x_j|² by the Gram trick; the kernel is smooth at r = 0.
        r2 = self.X_sq[i0:i1, None] + self.X_sq[j] - 2.0 * (Xi @ Xp.T)
        r = np.sqrt(np.maximum(r2, 0.0))
        if self.sparse:
            d = Xi - Xp
            a = jacobian_transpose_dot(self.G[i0:i1], d).reshape(n_i, 1, n3)
            b = jacobian_transpose_dot(np.broadcast_to(self.G[j], (n_i, D, 3)), d)
            return r, a, b.reshape(n_i, 1, n3), self._jacobian_products(i0, i1, j)
        a = (Xp @ self.J_by_atom[:, i0 * n3 : i1 * n3]).reshape(P, n_i, n3)
        a = self.JX[i0:i1, None, :] - a.transpose(1, 0, 2)
        Jp_cols = np.ascontiguousarray(Jp.transpose(1, 0, 2)).reshape(D, P * n3)
        Jp_Xp = np.einsum("pd,pdl->pl", Xp, Jp)  # (P, 3N): (P_p J_j)ᵀ P_p x_j
        b = (Xi @ Jp_cols).reshape(n_i, P, n3) - Jp_Xp[None]
        return r, a, b

    def block(self, column: tuple, i0: int, i1: int, sigma: float) -> np.ndarray:
        """K_ij for rows i0 ≤ i < i1 of the prepared ``column`` j, shape (i1 − i0, 3N, 3N)."""
        Jp, n_i = column[2], i1 - i0
        r, a, b, *jacobian_products = self.terms(column, i0, i1)
        c1, c2 = matern_coefficients(r, sigma)
        # Identity part J_iᵀ (Σ_p c1 P_p J_j) and the rank-one part
        # Σ_p c2 (J_iᵀ d)((P_p J_j)ᵀ d)ᵀ.
        if self.sparse:
            block = c1[:, :, None] * jacobian_products[0]
        else:
            W = (c1 @ Jp.reshape(self.P, -1)).reshape(n_i, self.D, self.n3)
            block = np.matmul(self.Jt[i0:i1], W)
        block -= np.matmul((a * c2[:, :, None]).transpose(0, 2, 1), b)
        return block

    def _jacobian_products(self, i0: int, i1: int, j: int) -> np.ndarray:
        """J_iᵀ J_j (i1 − i0, 3N, 3N) from compact Jacobians: entry d = (a, b) adds
        G_i,d G_j,dᵀ to the diagonal blocks (a, a) and (b, b) and subtracts it from the
        off-diagonal blocks (a, b) and (b, a)."""
        n_i, n_atoms = i1 - i0, self.n3 // 3
        outer = self.G[i0:i1, :, :, None] * self.G[j][None, :, None, :]  # (n_i, D, 3, 3)
        out = np.zeros((n_i, n_atoms, 3, n_atoms, 3))
        a, b = self.pairs
        by_pair = -outer.transpose(1, 0, 2, 3)  # (D, n_i, 3, 3), the layout of out[:, a, :, b, :]
        out[:, a, :, b, :] = by_pair
        out[:, b, :, a, :] = by_pair
        diag = self.abs_incidence @ outer.transpose(1, 0, 2, 3).reshape(self.D, n_i * 9)
        atoms = np.arange(n_atoms)
        out[:, atoms, :, atoms, :] = diag.reshape(n_atoms, n_i, 3, 3)
        return out.reshape(n_i, self.n3, self.n3)


def assemble_kernel(
    X: np.ndarray,
    J: np.ndarray,
    tril_perms: np.ndarray,
    sigma: float,
    upper_only: bool = True,
    out: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    n_workers: int | None = None,
    blocks: KernelBlocks | None = None,
) -> np.ndarray:
    """Force–force kernel matrix (3N·M, 3N·M) for descriptors X (M, D), Jacobians J (M, D, 3N).

    Block K_ij is stored transposed at rows j, columns i (the matrix is symmetric), so
    each write is a run of contiguous rows. With ``upper_only`` only i ≥ j is computed:
    the C-ordered upper triangle holds K (i.e. the Fortran-ordered ``K.T`` holds the
    lower triangle LAPACK needs) and the strict lower triangle is left undefined.
    Columns are filled by ``n_workers`` threads (default: the cores available), each
    running single-threaded BLAS: the products here are too small for threaded BLAS.
    ``blocks``, the :class:`KernelBlocks` of these X, J and ``tril_perms``, brings its
    cache of σ-independent terms (filled by the first call, reused by later ones).
    """
    M, _, n3 = J.shape
    K = np.empty((M * n3, M * n3)) if out is None else out
    if blocks is None:
        blocks = KernelBlocks(X, J, tril_perms)
    rows_per_chunk = blocks.rows_per_chunk(256 * 2**20)

    def fill_column(j: int) -> None:
        column = blocks.column(j)
        for i0 in range(j if upper_only else 0, M, rows_per_chunk):
            i1 = min(M, i0 + rows_per_chunk)
            block = blocks.block(column, i0, i1, sigma)
            K[j * n3 : (j + 1) * n3, i0 * n3 : i1 * n3] = block.transpose(2, 0, 1).reshape(
                n3, (i1 - i0) * n3
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
