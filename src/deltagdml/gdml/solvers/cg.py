"""Preconditioned conjugate gradient with progress logging and resumable checkpoints.

A checkpoint holds the CG state after a completed iteration — solution ``x``, residual
``r``, search direction ``p``, ``rz = rᵀ P r`` and the iteration count — with a
fingerprint of the linear system. It is written atomically, so a killed run resumes from
its last checkpoint exactly; a checkpoint of another system is ignored and overwritten.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deltagdml.atomic_io import save_npz_atomic
from deltagdml.errors import DeltaGDMLError
from deltagdml.npz_io import read_npz

log = logging.getLogger(__name__)

Operator = Callable[[np.ndarray], np.ndarray]
STATE_KEYS = ("fingerprint", "x", "r", "p", "rz", "iteration")


@dataclass
class Checkpoint:
    """Where and how often to save the CG state of the system ``fingerprint``."""

    path: str | os.PathLike
    fingerprint: str
    every_s: float = 300.0

    def load(self) -> dict[str, np.ndarray] | None:
        """The saved state, or None if there is none for this system."""
        if not Path(self.path).exists():
            return None
        try:
            state = read_npz(self.path, STATE_KEYS, "CG checkpoint")
        except DeltaGDMLError as exc:
            log.warning("ignoring unreadable CG checkpoint: %s", exc)
            return None
        if str(state["fingerprint"]) != self.fingerprint:
            log.info("ignoring CG checkpoint %s: it belongs to another system", self.path)
            return None
        return state

    def save(self, x: np.ndarray, r: np.ndarray, p: np.ndarray, rz: float, it: int) -> None:
        save_npz_atomic(
            self.path,
            fingerprint=np.array(self.fingerprint),
            x=x,
            r=r,
            p=p,
            rz=np.array(rz),
            iteration=np.array(it),
        )


@dataclass
class CGResult:
    x: np.ndarray
    iterations: int
    residual: float  # ‖b − A x‖ / ‖b‖, recomputed from x at the end
    converged: bool


def conjugate_gradient(
    matvec: Operator,
    b: np.ndarray,
    precond: Operator,
    tol: float = 1e-4,
    max_iter: int = 5000,
    checkpoint: Checkpoint | None = None,
    log_every_s: float = 30.0,
    x0: np.ndarray | None = None,
) -> CGResult:
    """Solve A x = b for symmetric positive definite A to ‖b − A x‖ ≤ tol·‖b‖, starting
    from ``x0`` (default zero) unless a checkpoint is resumed.

    Convergence of the recursively updated residual is confirmed with a true residual
    b − A x (one extra product); if rounding has let the two drift apart, CG restarts
    from x with the true residual.
    """
    t0 = time.perf_counter()
    b_norm = float(np.linalg.norm(b))
    if b_norm == 0.0:
        return CGResult(np.zeros_like(b), 0, 0.0, True)
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        x, r, p = state["x"], state["r"], state["p"]
        rz, it = float(state["rz"]), int(state["iteration"])
        log.info("resuming CG from %s at iteration %d", checkpoint.path, it)
    else:
        x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=float)
        r, it = (b.copy() if x0 is None else b - matvec(x)), 0
        p = precond(r)
        rz = float(r @ p)
    last_log = last_save = time.perf_counter()
    residual = float(np.linalg.norm(r)) / b_norm
    while True:
        if residual <= tol:
            r_true = b - matvec(x)
            true_residual = float(np.linalg.norm(r_true)) / b_norm
            if true_residual <= tol:
                log.info(
                    "CG converged in %d iterations: residual %.2e (%.0f s)",
                    it,
                    true_residual,
                    time.perf_counter() - t0,
                )
                if checkpoint is not None:
                    checkpoint.save(x, r, p, rz, it)
                return CGResult(x, it, true_residual, True)
            log.info("CG restart: true residual %.2e above the recursive one", true_residual)
            r, residual = r_true, true_residual
            p = precond(r)
            rz = float(r @ p)
        if it >= max_iter:
            break
        Ap = matvec(p)
        step = rz / float(p @ Ap)
        x += step * p
        r -= step * Ap
        z = precond(r)
        rz, rz_old = float(r @ z), rz
        p = z + (rz / rz_old) * p
        it += 1
        residual = float(np.linalg.norm(r)) / b_norm
        now = time.perf_counter()
        if now - last_log >= log_every_s:
            log.info("CG iteration %d: residual %.2e (%.0f s)", it, residual, now - t0)
            last_log = now
        if checkpoint is not None and now - last_save >= checkpoint.every_s:
            checkpoint.save(x, r, p, rz, it)
            last_save = now
    true_residual = float(np.linalg.norm(b - matvec(x))) / b_norm
    log.warning(
        "CG did not reach residual %.1e in %d iterations (residual %.2e)",
        tol,
        max_iter,
        true_residual,
    )
    if checkpoint is not None:
        checkpoint.save(x, r, p, rz, it)
    return CGResult(x, it, true_residual, False)
