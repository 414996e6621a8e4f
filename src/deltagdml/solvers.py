"""Linear solvers for the regularised kernel system (K + λI) α = y."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla

from .errors import ModelError

log = logging.getLogger(__name__)


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
        factor = sla.cho_factor(K_upper.T, lower=True, overwrite_a=True, check_finite=False)
        return sla.cho_solve(factor, y, check_finite=False)
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
