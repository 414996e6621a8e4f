"""Batched energy and force prediction of a trained sGDML model.

Instead of permuting every training point (M·P rows), each query descriptor is
permuted (P rows) — the kernel sum over a group is the same — so the training set
stays small and cache-resident and every heavy step is a dense matrix product.
"""

from __future__ import annotations

import numpy as np

from deltagdml.gdml.descriptor import descriptor_and_jacobian, jacobian_transpose_dot
from deltagdml.gdml.kernel import SQRT5


class KernelExpansion:
    """The trained expansion E(x) = std·Σ_{j,p} ∂k(x, P_p x_j)ᵀ P_p v_j + c.

    ``X`` (M, D) are training descriptors, ``V`` (M, D) the descriptor-space weights
    v_j = J_j α_j, ``tril_perms`` (P, D) the descriptor permutations.
    """

    def __init__(
        self,
        X: np.ndarray,
        V: np.ndarray,
        tril_perms: np.ndarray,
        sigma: float,
        std: float,
        c: float,
        max_chunk_elements: int = 250_000,
    ) -> None:
        self.sigma = float(sigma)
        self.std = float(std)
        self.c = float(c)
        self.M, self.D = X.shape
        self.P = tril_perms.shape[0]
        self.perms = np.ascontiguousarray(tril_perms)
        self.inv_perms = np.argsort(tril_perms, axis=1)
        self.VX = np.ascontiguousarray(np.vstack([V, X]))  # (2M, D)
        self.X_sq = np.einsum("md,md->m", X, X)
        self.X_dot_V = np.einsum("md,md->m", X, V)
        self.chunk = max(1, max_chunk_elements // (self.P * 2 * self.M))

    def _descriptor_gradient(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy (without std, c) and its gradient with respect to the descriptor."""
        Q, D, P, M = x.shape[0], self.D, self.P, self.M
        s = self.sigma
        q = x[:, self.inv_perms].reshape(Q * P, D)  # permuted queries
        S = q @ self.VX.T  # (QP, 2M): [q·v_j | q·x_j]
        e_dot_v = S[:, :M] - self.X_dot_V
        r2 = np.einsum("qd,qd->q", q, q)[:, None] + self.X_sq - 2.0 * S[:, M:]
        u = (SQRT5 / s) * np.sqrt(np.maximum(r2, 0.0))
        ex = np.exp(-u)
        A = (1.0 + u) * ex
        B = ex * e_dot_v
        c0 = 5.0 / (3.0 * s**2)
        energy = -c0 * np.einsum("qm,qm->q", A, e_dot_v).reshape(Q, P).sum(axis=1)
        coeff = np.hstack([A, (5.0 / s**2) * B])  # (QP, 2M)
        g = coeff @ self.VX - (5.0 / s**2) * B.sum(axis=1)[:, None] * q
        g = (-c0 * g).reshape(Q, P, D)
        grad = g[:, np.arange(P)[:, None], self.perms].sum(axis=1)
        return energy, grad

    def predict(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energies (Q,) and forces (Q, N, 3) for geometries R (Q, N, 3)."""
        R = np.asarray(R, dtype=float)
        if R.ndim == 2:
            R = R[None]
        E = np.empty(R.shape[0])
        F = np.empty_like(R)
        for start in range(0, R.shape[0], self.chunk):
            stop = min(start + self.chunk, R.shape[0])
            x, G = descriptor_and_jacobian(R[start:stop])
            e, grad = self._descriptor_gradient(x)
            E[start:stop] = self.std * e + self.c
            F[start:stop] = -self.std * jacobian_transpose_dot(G, grad)
        return E, F
