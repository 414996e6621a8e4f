"""Predictive uncertainty of a trained sGDML model: where it has data, and where not.

An sGDML model is the posterior mean of a Gaussian process (GP) on the energy f(x) of the
descriptor x, with the symmetrised Matérn-5/2 prior covariance
k(x, x') = Σ_p κ(|x − P_p x'|), κ(r) = (1 + u + u²/3) e^{−u}, u = √5 r/σ, trained on the
forces F = −∇E (in units of the training forces' standard deviation ``std``). Two
estimators, both ``std(X) -> (Q,)`` for query descriptors X (Q, D):

- :class:`GPEnergyStd` (``"gp"``): the GP posterior standard deviation of the energy
  (kcal/mol), conditioned on the forces *and* energies of m inducing training geometries
  (the energies pin the integration constant that forces leave free, so it vanishes at
  the training geometries). With m = M it is exact; for large models m is capped so that
  the (3N + 1)·m system fits ``max_size``, the inducing geometries are chosen by farthest
  point sampling, and the result is an upper bound of the exact posterior (fewer
  observations).
- :class:`NearestDistance` (``"nearest"``): the descriptor distance to the nearest
  training geometry over all permutations, in units of σ (dimensionless): cheap, no
  factorisation.

Both need only the model's arrays: the training geometries are rebuilt from their
descriptors (all inverse distances) by classical multidimensional scaling, up to a rigid
motion, which no scalar prediction depends on.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.linalg as sla

from deltagdml.errors import ModelError
from deltagdml.gdml.descriptor import (
    dense_jacobian,
    descriptor_and_jacobian,
    jacobian_transpose_dot,
)
from deltagdml.gdml.kernel import (
    assemble_kernel,
    matern,
    matern_coefficients,
    min_sq_distances,
)
from deltagdml.gdml.solvers.cholesky import cholesky_jittered

#: uncertainty estimators by name; the first is the default
METHODS = ("gp", "nearest")
#: unit of each estimator's output
UNITS = {"gp": "kcal/mol", "nearest": "sigma"}
#: default largest order (3N + 1)·m of the GP system: 18 MB, ~1–5 ms per query
DEFAULT_MAX_SIZE = 1500


class Estimator(Protocol):
    """An uncertainty estimator of one model: ``std(X)`` for descriptors X (Q, D)."""

    def std(self, X: np.ndarray) -> np.ndarray: ...


def n_atoms_of(n_entries: int) -> int:
    """Atoms N of a descriptor with N(N − 1)/2 entries."""
    return int(round((1 + np.sqrt(1 + 8 * n_entries)) / 2))


def geometries_from_descriptors(X: np.ndarray) -> np.ndarray:
    """Geometries (M, N, 3) whose inverse-distance descriptors are X (M, D), by classical
    multidimensional scaling; exact up to rotation, reflection and translation."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    N = n_atoms_of(X.shape[1])
    a, b = np.tril_indices(N, -1)
    R = np.empty((X.shape[0], N, 3))
    centre = np.eye(N) - 1.0 / N
    for m, x in enumerate(X):
        d2 = np.zeros((N, N))
        d2[a, b] = d2[b, a] = 1.0 / x**2
        w, U = np.linalg.eigh(-0.5 * centre @ d2 @ centre)
        top = np.argsort(w)[::-1][:3]
        R[m] = U[:, top] * np.sqrt(np.maximum(w[top], 0.0))
    return R


def _permuted(X: np.ndarray, inverse_perms: np.ndarray) -> np.ndarray:
    """Queries permuted like the kernel expansion: (Q, P, D) with |q_p − x'| = |x − P_p x'|
    (``inverse_perms``: the descriptor permutations' inverses, ``argsort(tril_perms)``)."""
    return X[:, inverse_perms]


def _sq_distances(q: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Squared distances (Q, P, M) between permuted queries q (Q, P, D) and X (M, D); a
    permutation keeps a query's norm, so |q_p|² is that of its first permutation."""
    d2 = q @ X.T
    d2 *= -2.0
    d2 += np.einsum("qd,qd->q", q[:, 0], q[:, 0])[:, None, None] + np.einsum("md,md->m", X, X)
    return np.maximum(d2, 0.0, out=d2)


def farthest_points(
    X: np.ndarray, tril_perms: np.ndarray, m: int, first: int | None = None
) -> np.ndarray:
    """Indices (sorted) of ``m`` rows of X chosen by farthest point sampling with
    permutation-aware distances, from row ``first`` (default: the row nearest the mean);
    deterministic, ties to the lower index."""
    M = X.shape[0]
    if m >= M:
        return np.arange(M)
    if first is None:
        first = int(np.argmin(((X - X.mean(axis=0)) ** 2).sum(axis=1)))
    chosen = [first]
    nearest = min_sq_distances(X[[first]], X, tril_perms)[0]
    for _ in range(m - 1):
        nearest[chosen] = -1.0
        j = int(np.argmax(nearest))
        chosen.append(j)
        nearest = np.minimum(nearest, min_sq_distances(X[[j]], X, tril_perms)[0])
    return np.sort(np.array(chosen))


class NearestDistance:
    """Distance (units of σ) of each query descriptor to the nearest training descriptor,
    minimised over the permutations: 0 at a training geometry, growing away from them."""

    #: queries per chunk: the permuted queries' distances (chunk, P, M) stay small
    CHUNK_ENTRIES = 2**22

    def __init__(self, X_train: np.ndarray, tril_perms: np.ndarray, sigma: float) -> None:
        self.X = np.ascontiguousarray(X_train)
        self.inverse_perms = np.argsort(tril_perms, axis=1)
        self.sigma = float(sigma)

    def std(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        chunk = max(1, self.CHUNK_ENTRIES // (len(self.inverse_perms) * len(self.X)))
        d2 = [
            _sq_distances(_permuted(X[i : i + chunk], self.inverse_perms), self.X).min(axis=(1, 2))
            for i in range(0, len(X), chunk)
        ]
        return np.sqrt(np.concatenate(d2)) / self.sigma


class GPEnergyStd:
    """Posterior standard deviation (energy units of the model) of the model's GP on the
    energy, given forces and energies at m inducing training geometries (module docstring).

    ``std`` is the force scale of the model (the GP's prior amplitude), ``lam`` its
    regularisation, used as the noise of both kinds of observation.
    """

    def __init__(
        self,
        X_train: np.ndarray,
        tril_perms: np.ndarray,
        sigma: float,
        std: float,
        lam: float = 1e-10,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        M, D = X_train.shape
        n3 = 3 * n_atoms_of(D)
        m = min(M, max(1, max_size // (n3 + 1)))
        self.sigma, self.scale = float(sigma), float(std)
        self.inverse_perms = np.argsort(tril_perms, axis=1)
        self.inducing_ = farthest_points(X_train, tril_perms, m)
        R = geometries_from_descriptors(X_train[self.inducing_])
        self.X_, self.G_ = descriptor_and_jacobian(R)
        K_ff = assemble_kernel(self.X_, dense_jacobian(self.G_), tril_perms, sigma)
        K_ef, K_ee = self._cross(self.X_)  # (m, m·3N), (m, m)
        n = m * n3
        # only the lower triangle is factorised: K_ff's upper triangle (C order) is K's
        A = np.zeros((n + m, n + m), order="F")
        A[:n, :n] = K_ff.T
        A[n:, :n] = K_ef
        A[n:, n:] = K_ee
        A.flat[:: n + m + 1] += lam
        self.L_ = cholesky_jittered(A, "uncertainty: the inducing kernel")
        self.n_inducing_ = m

    def _cross(self, X: np.ndarray, q: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Prior covariances of the energies at X (Q, D) with the forces (Q, m·3N) and the
        energies (Q, m) at the inducing geometries (q: X permuted, if at hand)."""
        s = self.sigma
        q = _permuted(X, self.inverse_perms) if q is None else q  # (Q, P, D)
        r = np.sqrt(_sq_distances(q, self.X_))  # (Q, P, m)
        k_e = matern(r, s).sum(axis=1)
        c, _ = matern_coefficients(r, s)
        # W_j = Σ_p c_pj (q_p − x_j); cov(E(x), F_j) = −J_jᵀ W_j
        W = np.matmul(c.transpose(0, 2, 1), q) - c.sum(axis=1)[..., None] * self.X_
        Q, m = W.shape[:2]
        G = np.broadcast_to(self.G_, (Q, *self.G_.shape)).reshape(Q * m, *self.G_.shape[1:])
        k_f = -jacobian_transpose_dot(G, W.reshape(Q * m, -1)).reshape(Q, -1)
        return k_f, k_e

    def prior_variance(self, X: np.ndarray) -> np.ndarray:
        """k(x, x) = Σ_p κ(|x − P_p x|) of each query (normalised units)."""
        q = _permuted(X, self.inverse_perms)
        return self._prior_variance(X, q)

    def _prior_variance(self, X: np.ndarray, q: np.ndarray) -> np.ndarray:
        """:meth:`prior_variance` from the permuted queries q (Q, P, D):
        |x − P_p x|² = 2(|x|² − q_p·x)."""
        sq = np.einsum("qd,qd->q", X, X)
        d2 = 2.0 * (sq[:, None] - np.einsum("qpd,qd->qp", q, X))
        return matern(np.sqrt(np.maximum(d2, 0.0)), self.sigma).sum(axis=1)

    def std(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        q = _permuted(X, self.inverse_perms)
        k_f, k_e = self._cross(X, q)
        v = sla.solve_triangular(self.L_, np.hstack([k_f, k_e]).T, lower=True, check_finite=False)
        var = self._prior_variance(X, q) - np.einsum("nq,nq->q", v, v)
        return self.scale * np.sqrt(np.maximum(var, 0.0))


def make_estimator(
    method: str,
    X_train: np.ndarray,
    tril_perms: np.ndarray,
    sigma: float,
    std: float,
    lam: float,
    max_size: int = DEFAULT_MAX_SIZE,
) -> Estimator:
    """The estimator ``method`` (one of :data:`METHODS`) of a model's arrays."""
    if method == "gp":
        return GPEnergyStd(X_train, tril_perms, sigma, std, lam, max_size)
    if method == "nearest":
        return NearestDistance(X_train, tril_perms, sigma)
    raise ModelError(f"unknown uncertainty method {method!r}; known: {METHODS}")


def calibrated_threshold(values: np.ndarray, quantile: float, factor: float) -> float:
    """Threshold ``factor`` × the ``quantile`` of ``values`` (e.g. uncertainties of the
    validation geometries): frames above it have left the model's data."""
    if not 0.0 < quantile <= 1.0 or factor <= 0.0:
        raise ModelError(f"need 0 < quantile ≤ 1 and factor > 0, got {quantile}, {factor}")
    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        raise ModelError("no finite uncertainties to calibrate a threshold on")
    return float(factor * np.quantile(values, quantile))
