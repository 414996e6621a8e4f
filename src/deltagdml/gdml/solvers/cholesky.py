"""The analytic solver: Cholesky factorisation of the dense kernel system (K + λI) α = y,
with a symmetric-indefinite fallback."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla

from deltagdml.errors import ModelError

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


def cholesky_symmetric(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of the symmetric A, overwriting A."""
    return cholesky_lower(A if A.flags.f_contiguous else A.T)


def cholesky_jittered(A: np.ndarray, what: str) -> np.ndarray:
    """Lower Cholesky factor of A + εI with the smallest ε = 10^k·mean(diag A), k ≥ −12,
    that works: a force kernel is singular along each geometry's rigid-body motions.
    Every attempt reuses one copy of A, so a retry needs no third matrix; ``what`` names
    the matrix in the error."""
    scale = float(np.mean(np.diag(A)))
    shifted = np.empty_like(A)
    for exponent in range(-12, -3):
        np.copyto(shifted, A)
        shifted.flat[:: A.shape[0] + 1] += scale * 10.0**exponent
        try:
            return cholesky_symmetric(shifted)
        except np.linalg.LinAlgError:
            continue
    raise ModelError(f"{what} is not positive definite")


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
