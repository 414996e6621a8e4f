"""Batched energy and force prediction of a trained sGDML model.

Instead of permuting every training point (M·P rows), each query descriptor is
permuted (P rows) — the kernel sum over a group is the same — so the training set
stays small and cache-resident and every heavy step is a dense matrix product.

A single-geometry prediction allocates only its results and a few arrays of O(N): the
intermediates (a few MB for a large permutation group) live in work arrays kept per thread
and reused by later calls, written with ``out=`` arguments and in place. Fresh arrays of
that size would be mapped from the system and page-faulted in again at every MD step.
"""

from __future__ import annotations

import math
import threading
from types import SimpleNamespace

import numpy as np

from deltagdml.gdml.descriptor import incidence, pair_indices
from deltagdml.gdml.kernel import SQRT5


class _Workspace:
    """Work arrays for chunks of up to ``n_queries`` queries, with cached views in the
    shapes of a chunk of Q queries."""

    def __init__(self, n_queries: int, P: int, M: int, D: int) -> None:
        self.n_queries = n_queries
        self.P, self.M, self.D = P, M, D
        rows = n_queries * P
        sizes = {"diff": 3 * n_queries * D, "G": 3 * n_queries * D, "x": n_queries * D}
        sizes |= {"x3": n_queries * D, "grad": n_queries * D, "e": rows, "q": rows * D}
        sizes |= {"g": rows * D, "S": rows * 2 * M, "ev": rows * M, "u": rows * M}
        sizes |= {"ex": rows * M, "qq": rows, "bs": rows}
        self.size = sum(sizes.values())
        self.flat = {name: np.empty(size) for name, size in sizes.items()}
        self.cache: dict[int, SimpleNamespace] = {}

    def views(self, Q: int) -> SimpleNamespace:
        """The work arrays for Q queries (rows = Q·P)."""
        if Q not in self.cache:
            if len(self.cache) >= 8:  # batches of many sizes: keep a few
                self.cache.clear()
            self.cache[Q] = self._views(Q)
        return self.cache[Q]

    def _views(self, Q: int) -> SimpleNamespace:
        P, D, M, rows = self.P, self.D, self.M, Q * self.P

        def view(name: str, *shape: int) -> np.ndarray:
            return self.flat[name][: math.prod(shape)].reshape(shape)

        return SimpleNamespace(
            diff=view("diff", Q, D, 3),
            G=view("G", Q, D, 3),
            w=view("diff", D, Q, 3),  # the forces' terms, once the differences are used
            x=view("x", Q, D),
            x3=view("x3", Q, D),
            grad=view("grad", Q, D),
            e=view("e", rows),
            q=view("q", rows, D),
            q3=view("q", Q, P, D),  # also the gradient rows gathered by permutation
            S=view("S", rows, 2 * M),
            ev=view("ev", rows, M),
            u=view("u", rows, M),
            ex=view("ex", rows, M),
            qq=view("qq", rows),
            bs=view("bs", rows),
            g=view("g", rows, D),
            gT=view("g", D, rows),
        )


class KernelExpansion:
    """The trained expansion E(x) = std·Σ_{j,p} ∂k(x, P_p x_j)ᵀ P_p v_j + c.

    ``X`` (M, D) are training descriptors, ``V`` (M, D) the descriptor-space weights
    v_j = J_j α_j, ``tril_perms`` (P, D) the descriptor permutations.

    Queries go in chunks of ``chunk`` = ``max_chunk_elements`` // (P·2M) geometries (at
    least one), each with all P permutations (blocks of permutations that fit in cache
    were not faster and would change the summation order). Work arrays are kept per
    thread (concurrent calls are safe) and grow with the largest chunk seen, up to
    8·``max_chunk_elements`` entries in all (a single geometry's are always kept); a batch
    that needs more (D ≫ 2M) gets work arrays for that call only. Every call returns new
    arrays.

    Each step performs the floating-point operations of the allocating formula of the
    previous version in the same order, on the same shapes and memory layouts, so for the
    same number of BLAS threads the results are bitwise identical (single geometries and
    batches).
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
        self._max_retained = 8 * max_chunk_elements
        n_atoms = int(round((1 + np.sqrt(1 + 8 * self.D)) / 2))
        self._pairs = pair_indices(n_atoms)
        self._incidence = incidence(n_atoms)
        # flat index of gradient entry P_p⁻¹(d) among the P·D of a query
        self._gather = np.arange(self.P)[:, None] * self.D + self.perms
        self._local = threading.local()

    def _workspace(self, n_queries: int) -> _Workspace:
        """Work arrays for chunks of ``n_queries`` queries: this thread's, grown if needed."""
        ws = getattr(self._local, "workspace", None)
        if ws is None or ws.n_queries < n_queries:
            ws = _Workspace(n_queries, self.P, self.M, self.D)
            if n_queries == 1 or ws.size <= self._max_retained:
                self._local.workspace = ws
        return ws

    def _descriptor(self, v: SimpleNamespace, R: np.ndarray) -> None:
        """Descriptors ``v.x`` (Q, D) and compact Jacobians ``v.G`` (Q, D, 3) of R, as
        :func:`~deltagdml.gdml.descriptor.descriptor_and_jacobian` computes them."""
        a, b = self._pairs
        np.take(R, a, axis=1, out=v.diff, mode="clip")
        np.take(R, b, axis=1, out=v.G, mode="clip")
        np.subtract(v.diff, v.G, out=v.diff)
        np.einsum("qkc,qkc->qk", v.diff, v.diff, out=v.x)
        np.sqrt(v.x, out=v.x)
        np.divide(1.0, v.x, out=v.x)
        np.power(v.x, 3, out=v.x3)
        np.copyto(v.G, v.x3[..., None])
        np.multiply(v.G, v.diff, out=v.G)

    def _descriptor_gradient(self, v: SimpleNamespace, E: np.ndarray) -> None:
        """Energies E (Q,) of the descriptors ``v.x`` and their gradients in descriptor space
        (without std) in ``v.grad``."""
        Q, M, s = v.x.shape[0], self.M, self.sigma
        q, S, ev, u, ex, g = v.q, v.S, v.ev, v.u, v.ex, v.g
        # numpy allocates buffers for strided or broadcast operands of arithmetic, so those
        # are copied into contiguous work arrays first (and take uses mode="clip": "raise"
        # writes through a temporary)
        np.take(v.x, self.inv_perms, axis=1, out=v.q3, mode="clip")
        np.matmul(q, self.VX.T, out=S)  # [q·v_j | q·x_j]
        np.copyto(u, S[:, :M])
        np.copyto(ev, self.X_dot_V)
        np.subtract(u, ev, out=ev)  # (q − x_j)·v_j
        if self.P == 1 and Q > 1:  # the old q was then a transposed view: sum in its order
            np.copyto(v.gT, q.T)
            np.einsum("dq,dq->q", v.gT, v.gT, out=v.qq)
        else:
            np.einsum("qd,qd->q", q, q, out=v.qq)
        np.copyto(u, v.qq[:, None])
        np.copyto(ex, self.X_sq)
        np.add(u, ex, out=u)
        np.copyto(ex, S[:, M:])
        np.multiply(ex, 2.0, out=ex)
        np.subtract(u, ex, out=u)  # |q − x_j|²
        np.maximum(u, 0.0, out=u)
        np.sqrt(u, out=u)
        np.multiply(u, SQRT5 / s, out=u)
        np.negative(u, out=ex)
        np.exp(ex, out=ex)
        np.add(u, 1.0, out=u)
        np.multiply(u, ex, out=u)  # A
        np.einsum("qm,qm->q", u, ev, out=v.e)
        np.multiply(ex, ev, out=ex)  # B
        np.add.reduce(ex, axis=1, out=v.bs)
        np.multiply(ex, 5.0 / s**2, out=ex)
        np.copyto(S[:, :M], u)  # S now takes the coefficients [A | 5/σ² B] of VX
        np.copyto(S[:, M:], ex)
        np.multiply(v.bs, 5.0 / s**2, out=v.bs)
        np.copyto(g, v.bs[:, None])
        np.multiply(g, q, out=g)
        np.matmul(S, self.VX, out=q)
        np.subtract(q, g, out=g)
        np.multiply(g, -5.0 / (3.0 * s**2), out=g)
        np.take(g.reshape(Q, -1), self._gather, axis=1, out=v.q3, mode="clip")
        np.add.reduce(v.q3, axis=1, out=v.grad)
        np.add.reduce(v.e.reshape(Q, -1), axis=1, out=E)
        np.multiply(E, -5.0 / (3.0 * s**2), out=E)
        np.multiply(E, self.std, out=E)
        np.add(E, self.c, out=E)

    def _forces(self, v: SimpleNamespace, F: np.ndarray) -> None:
        """Forces F (Q, N, 3) = −std Jᵀ ∇, as
        :func:`~deltagdml.gdml.descriptor.jacobian_transpose_dot` computes Jᵀ ∇."""
        Q, D = v.grad.shape
        np.copyto(v.w, v.grad.T[:, :, None])
        np.multiply(v.w, v.G.transpose(1, 0, 2), out=v.w)
        out = self._incidence @ v.w.reshape(D, 3 * Q)
        np.multiply(out.reshape(-1, Q, 3).transpose(1, 0, 2), -self.std, out=F)

    def predict(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energies (Q,) and forces (Q, N, 3) for geometries R (Q, N, 3)."""
        R = np.asarray(R, dtype=float)
        if R.ndim == 2:
            R = R[None]
        E = np.empty(R.shape[0])
        F = np.empty_like(R)
        ws = self._workspace(min(R.shape[0], self.chunk))
        for start in range(0, R.shape[0], self.chunk):
            stop = min(start + self.chunk, R.shape[0])
            v = ws.views(stop - start)
            self._descriptor(v, R[start:stop])
            self._descriptor_gradient(v, E[start:stop])
            self._forces(v, F[start:stop])
        return E, F
