"""Linear solvers for the regularised kernel system (K + λI) α = y, and their memory.

The analytic solver stores the dense kernel matrix (8·(3N·M)² bytes); the iterative
solver (:mod:`deltagdml.iterative`) stores the block rows of m inducing geometries
(8·m·3N·3N·M bytes). ``solver="auto"`` picks the analytic one whenever it fits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla

from .errors import ModelError
from .parallel import available_threads

log = logging.getLogger(__name__)
# OpenBLAS's threaded dpotrf crashes (SIGSEGV) on larger matrices on the development
# machine (order 36,000, 2 threads; OpenBLAS issue #2562): above this order the
# factorisation is blocked here, with threaded GEMMs and small dpotrf calls.
LAPACK_CHOLESKY_MAX_ORDER = 12_000
CHOLESKY_BLOCK = 2048


def cholesky_lower(A: np.ndarray, block: int = CHOLESKY_BLOCK) -> np.ndarray:
    """Lower Cholesky factor of the Fortran-ordered ``A`` (lower triangle read), in place.

    Only the lower triangle of the result is the factor: the strict upper triangle is left
    as it was (clearing it costs ~12 % of the factorisation at order 9,000). Left-looking
    blocked algorithm above :data:`LAPACK_CHOLESKY_MAX_ORDER`; temporary memory
    2·8·n·block bytes. Raises ``np.linalg.LinAlgError`` if A is not positive definite.
    """
    n = A.shape[0]
    if n <= LAPACK_CHOLESKY_MAX_ORDER:
        return sla.cho_factor(A, lower=True, overwrite_a=True, check_finite=False)[0]
    for k in range(0, n, block):
        e = min(k + block, n)
        if k:
            # (B Cᵀ)ᵀ is Fortran-ordered like A: the subtraction streams through memory
            A[k:, k:e] -= (A[k:e, :k] @ A[k:, :k].T).T
        L = sla.cholesky(A[k:e, k:e], lower=True, check_finite=False)
        A[k:e, k:e] = L
        if e < n:
            A[e:, k:e] = sla.solve_triangular(L, A[e:, k:e].T, lower=True, check_finite=False).T
    return A


def solve_cholesky(
    K_upper: np.ndarray,
    y: np.ndarray,
    lam: float,
    reassemble: Callable[[], np.ndarray],
) -> np.ndarray:
    """Solve with a Cholesky factorisation, in place on ``K_upper``.

    ``K_upper`` is a C-ordered matrix whose upper triangle holds K (its transpose is a
    Fortran-ordered lower triangle, which LAPACK factorises without copying). If K + λI
    is not numerically positive definite, the full matrix is rebuilt with
    ``reassemble()`` and solved with a symmetric-indefinite (LDLᵀ) factorisation; a
    singular system raises :class:`ModelError`.
    """
    K_upper.flat[:: K_upper.shape[0] + 1] += lam
    try:
        L = cholesky_lower(K_upper.T)
        return sla.cho_solve((L, True), y, check_finite=False)
    except np.linalg.LinAlgError:
        log.warning(
            "kernel matrix + %.1e·I is not numerically positive definite; "
            "falling back to a symmetric-indefinite (LDLᵀ) solve",
            lam,
        )
    K = reassemble()
    K.flat[:: K.shape[0] + 1] += lam
    try:
        alpha = sla.solve(K, y, assume_a="sym", check_finite=False)
    except (np.linalg.LinAlgError, sla.LinAlgWarning) as exc:
        raise ModelError(
            "kernel matrix is singular: duplicate training geometries, a length scale σ far "
            "too large, or a regularisation λ too small"
        ) from exc
    if not np.all(np.isfinite(alpha)):
        raise ModelError("kernel solve produced non-finite coefficients (singular kernel matrix)")
    return alpha


SOLVERS = ("auto", "analytic", "iterative")
BASELINE_BYTES = 400 * 2**20  # interpreter, numpy, scipy, pandas, ase
ASSEMBLY_THREAD_BYTES = 512 * 2**20  # at most, per thread of kernel.assemble_kernel
ITERATIVE_THREAD_BYTES = 128 * 2**20  # at most, per thread of the iterative solver


def _common_bytes(n_train: int, n_atoms: int, n_perms: int) -> int:
    """Descriptors, three copies of the dense Jacobians, permutations and vectors."""
    n3, D = 3 * n_atoms, n_atoms * (n_atoms - 1) // 2
    return BASELINE_BYTES + 8 * (n_train * D * (3 * n3 + 8) + 2 * n_perms * D + 12 * n_train * n3)


def default_inducing(n_train: int) -> int:
    """Inducing geometries of the Nyström preconditioner when memory is plentiful."""
    return min(n_train, max(10, math.ceil(n_train / 10)))


def estimate_memory(
    n_train: int,
    n_atoms: int,
    n_perms: int,
    solver: str,
    n_inducing: int | None = None,
    threads: int | None = None,
) -> int:
    """Peak bytes of training one model with ``solver`` ("analytic" or "iterative").

    For "iterative", ``n_inducing`` defaults to :func:`default_inducing`; ``threads``
    defaults to :func:`available_threads`.
    """
    n3, D = 3 * n_atoms, n_atoms * (n_atoms - 1) // 2
    n = n_train * n3
    common = _common_bytes(n_train, n_atoms, n_perms)
    threads = threads or available_threads()
    if solver == "analytic":
        per_row = 8 * n3 * (D + 4 * n_perms)
        assembly = threads * min(n_train * per_row, ASSEMBLY_THREAD_BYTES)
        return common + 8 * n * n + max(assembly, 2 * 8 * n * CHOLESKY_BLOCK)
    if solver == "iterative":
        k = n3 * (default_inducing(n_train) if n_inducing is None else n_inducing)
        return common + 8 * (k * n + 2 * k * k) + threads * ITERATIVE_THREAD_BYTES
    raise ModelError(f"solver must be 'analytic' or 'iterative', got {solver!r}")


def max_inducing(
    n_train: int, n_atoms: int, n_perms: int, max_bytes: float, threads: int | None = None
) -> int:
    """Most inducing geometries (≤ :func:`default_inducing`) that fit in ``max_bytes``."""
    m = default_inducing(n_train)
    while m > 1 and (
        estimate_memory(n_train, n_atoms, n_perms, "iterative", m, threads) > max_bytes
    ):
        m -= 1
    return m


def choose_solver(
    solver: str,
    n_train: int,
    n_atoms: int,
    n_perms: int,
    max_memory_gb: float,
    threads: int | None = None,
) -> str:
    """The solver to use: ``solver`` itself, or for "auto" the analytic one if it fits."""
    if solver not in SOLVERS:
        raise ModelError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if solver != "auto":
        return solver
    analytic = estimate_memory(n_train, n_atoms, n_perms, "analytic", threads=threads)
    return "analytic" if analytic <= max_memory_gb * 2**30 else "iterative"


def training_mem_mb(
    n_train: int,
    n_atoms: int,
    n_perms: int,
    max_memory_gb: float,
    solver: str = "auto",
    threads: int | None = None,
) -> int:
    """Memory (MiB) a training job with ``threads`` threads needs: the estimate of the
    solver :func:`choose_solver` picks, with the preconditioner :class:`GDMLModel` builds."""
    chosen = choose_solver(solver, n_train, n_atoms, n_perms, max_memory_gb, threads)
    m = max_inducing(n_train, n_atoms, n_perms, max_memory_gb * 2**30, threads)
    return math.ceil(estimate_memory(n_train, n_atoms, n_perms, chosen, m, threads) / 2**20)
