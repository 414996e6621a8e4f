"""sGDML force-field estimator: ``fit`` on forces (and energies), ``predict`` E and F.

Units follow the training data; the workflow uses Å and kcal/mol like sGDML files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cached_property

import numpy as np

from deltagdml.errors import DatasetError, ModelError
from deltagdml.gdml.descriptor import dense_jacobian, descriptor, descriptor_and_jacobian
from deltagdml.gdml.expansion import KernelExpansion
from deltagdml.gdml.kernel import KernelBlocks, assemble_kernel, min_sq_distances
from deltagdml.gdml.solvers.choice import choose_solver, max_inducing
from deltagdml.gdml.solvers.cholesky import solve_cholesky
from deltagdml.gdml.solvers.nystrom import IterativeOptions, solve_iterative
from deltagdml.gdml.symmetry import descriptor_permutation, find_permutations, validate_permutations
from deltagdml.gdml.uncertainty import (
    DEFAULT_MAX_SIZE,
    METHODS,
    Estimator,
    calibrated_threshold,
    make_estimator,
)
from deltagdml.gdml.uncertainty import UNITS as UNCERTAINTY_UNITS

log = logging.getLogger(__name__)


def check_same_atoms(z_model: np.ndarray, z: np.ndarray, source: str) -> None:
    """Raise :class:`ModelError` if ``source`` holds other atoms than the model."""
    z = np.asarray(z)
    if z.shape != z_model.shape or not np.array_equal(z, z_model):
        raise ModelError(
            f"model was trained for atoms {z_model.tolist()} but {source} has {z.tolist()}"
        )


class _ProgressLog:
    """Logs kernel-assembly progress every 10 % once a step has run for 5 s."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.t0 = time.perf_counter()
        self.next_fraction = 0.1

    def __call__(self, done: int, total: int) -> None:
        fraction = done / total
        if fraction >= self.next_fraction:
            self.next_fraction = np.floor(fraction * 10 + 1) / 10
            elapsed = time.perf_counter() - self.t0
            if elapsed > 5.0:
                log.info("%s: %3.0f %% (%.0f s elapsed)", self.what, 100 * fraction, elapsed)


def check_training_data(
    R: np.ndarray, z: np.ndarray, F: np.ndarray, E: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and convert arrays; raise :class:`DatasetError` on bad shapes or values."""
    R = np.asarray(R, dtype=float)
    z = np.asarray(z)
    F = np.asarray(F, dtype=float)
    if R.ndim != 3 or R.shape[2] != 3:
        raise DatasetError(f"R must have shape (M, N, 3), got {R.shape}")
    if z.ndim != 1 or z.shape[0] != R.shape[1]:
        raise DatasetError(f"z has shape {z.shape} but R holds {R.shape[1]} atoms per geometry")
    if F.shape != R.shape:
        raise DatasetError(f"F has shape {F.shape} but R has shape {R.shape}")
    if E is not None:
        E = np.asarray(E, dtype=float).reshape(-1)
        if E.shape[0] != R.shape[0]:
            raise DatasetError(f"E has {E.shape[0]} entries for {R.shape[0]} geometries")
    for name, arr in (("R", R), ("F", F), ("E", E)):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise DatasetError(f"{name} contains NaN or inf values")
    if R.shape[1] < 2:
        raise DatasetError("an sGDML model needs at least two atoms")
    return R, z.astype(int), F, E


def check_duplicates(X: np.ndarray, tril_perms: np.ndarray, tol: float = 1e-9) -> None:
    """Raise if two training descriptors coincide up to a permutation (singular kernel)."""
    M = X.shape[0]
    scale = max(float(np.einsum("md,md->m", X, X).max()), 1e-300)
    d2 = min_sq_distances(X, X, tril_perms)
    d2[np.arange(M), np.arange(M)] = np.inf
    i, j = np.unravel_index(np.argmin(d2), d2.shape)
    if d2[i, j] < tol * scale:
        raise DatasetError(
            f"training geometries {i} and {j} are identical (up to atom permutation); "
            "duplicate geometries make the kernel matrix singular — remove them"
        )


class TrainingGeometry:
    """What fitting training geometries R (M, N, 3) with the permutation group ``perms``
    (P, N) needs at every σ: descriptor permutations, descriptors X, dense Jacobians J and,
    for the analytic solver, the kernel's :attr:`blocks`, which keep up to ``cache_bytes``
    of σ-independent kernel terms. Built once per training set (a σ search) and passed to
    every :meth:`GDMLModel.fit` on it."""

    def __init__(self, R: np.ndarray, perms: np.ndarray, cache_bytes: int = 0) -> None:
        self.R, self.perms, self.cache_bytes = R, perms, cache_bytes
        self.tril_perms = np.array([descriptor_permutation(p) for p in perms])
        self.X, G = descriptor_and_jacobian(R)
        check_duplicates(self.X, self.tril_perms)
        self.J = dense_jacobian(G)

    @cached_property
    def blocks(self) -> KernelBlocks:
        """The kernel blocks with their cache, built on first use (the iterative solver
        has its own)."""
        return KernelBlocks(self.X, self.J, self.tril_perms, self.cache_bytes)


class GDMLModel:
    """Symmetric gradient-domain (sGDML) kernel force field.

    Parameters
    ----------
    sigma : kernel length scale (descriptor units, Å⁻¹), > 0.
    lam : regularisation λ added to the kernel diagonal.
    perms : "auto" (bond-graph automorphisms), "none", or an explicit (P, N) array.
    max_perms : largest permutation group accepted by "auto".
    solver : "analytic" (dense Cholesky), "iterative" (low-memory CG, see
        :mod:`deltagdml.gdml.solvers.nystrom`) or "auto": analytic if it fits in ``max_memory_gb``.
    max_memory_gb : memory training may use; also bounds the iterative preconditioner.
    iterative : settings of the iterative solver.
    kernel_buffer : memory for the dense kernel matrix, reused by successive fits (e.g. over
        a σ grid) instead of fresh memory each time; used when large enough.
    init_alpha : starting coefficients of the iterative solver (e.g. the solution at a
        neighbouring σ); the analytic solver ignores them.
    uncertainty : the estimator of ``predict(R, return_std=True)``, one of
        :data:`deltagdml.gdml.uncertainty.METHODS` ("gp": GP posterior energy std, kcal/mol;
        "nearest": distance to the nearest training geometry, in σ).
    uncertainty_max_size : largest order of the "gp" estimator's system (its inducing
        geometries are capped to fit).

    Fitted attributes end in ``_``; :meth:`from_arrays` builds a fitted model from stored
    arrays (a model file).
    """

    def __init__(
        self,
        sigma: float,
        lam: float = 1e-10,
        perms: str | np.ndarray = "auto",
        max_perms: int = 2048,
        solver: str = "auto",
        max_memory_gb: float = 16.0,
        iterative: IterativeOptions | None = None,
        kernel_buffer: np.ndarray | None = None,
        init_alpha: np.ndarray | None = None,
        uncertainty: str = "gp",
        uncertainty_max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.sigma = sigma
        self.lam = lam
        self.perms = perms
        self.max_perms = max_perms
        self.solver = solver
        self.max_memory_gb = max_memory_gb
        self.iterative = iterative
        self.kernel_buffer = kernel_buffer
        self.init_alpha = init_alpha
        self.uncertainty = uncertainty
        self.uncertainty_max_size = uncertainty_max_size

    def _check_params(self) -> None:
        if not np.isfinite(self.sigma) or self.sigma <= 0:
            raise ModelError(f"sigma must be a positive number, got {self.sigma}")
        if not np.isfinite(self.lam) or self.lam < 0:
            raise ModelError(f"lam must be non-negative, got {self.lam}")
        if self.uncertainty not in METHODS:
            raise ModelError(f"uncertainty must be one of {METHODS}, got {self.uncertainty!r}")

    @classmethod
    def from_arrays(
        cls,
        *,
        z: np.ndarray,
        perms: np.ndarray,
        tril_perms: np.ndarray,
        X_train: np.ndarray,
        V: np.ndarray,
        alpha: np.ndarray | None,
        sigma: float,
        lam: float,
        std: float,
        c: float,
        use_E: bool,
        solver: str = "analytic",
        uncertainty: str = "gp",
        uncertainty_max_size: int = DEFAULT_MAX_SIZE,
        uncertainty_threshold: float | None = None,
    ) -> GDMLModel:
        """A fitted model from its arrays (descriptors ``X_train`` of the training
        geometries, their expansion coefficients ``V``, force coefficients ``alpha`` or None,
        the uncertainty estimator and its calibrated ``uncertainty_threshold`` or None).
        """
        model = cls(
            sigma=sigma,
            lam=lam,
            perms=perms,
            uncertainty=uncertainty,
            uncertainty_max_size=uncertainty_max_size,
        )
        model._check_params()
        model._set_fitted(z, perms, tril_perms, X_train, alpha, V, std, c, use_E)
        model.uncertainty_threshold_ = uncertainty_threshold
        model.solver_ = solver
        model.solver_info_ = {}
        model.timings_ = {}
        return model

    def _set_fitted(
        self,
        z: np.ndarray,
        perms: np.ndarray,
        tril_perms: np.ndarray,
        X_train: np.ndarray,
        alpha: np.ndarray | None,
        V: np.ndarray,
        std: float,
        c: float,
        use_E: bool,
    ) -> None:
        """Store the fitted arrays and build the kernel expansion that predicts with them."""
        self.z_ = z
        self.perms_ = perms
        self.tril_perms_ = tril_perms
        self.X_train_ = X_train
        self.alpha_ = alpha
        self.V_ = V
        self.std_ = float(std)
        self.c_ = float(c)
        self.use_E_ = bool(use_E)
        self.uncertainty_threshold_: float | None = None
        self._estimator: Estimator | None = None
        self._build_expansion()

    # -- training -----------------------------------------------------------------
    def resolve_perms(self, R: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The permutation group to use for training geometries R."""
        if isinstance(self.perms, str):
            if self.perms == "none":
                return np.arange(len(z))[None, :]
            if self.perms == "auto":
                return find_permutations(R, z, max_perms=self.max_perms)
            raise ModelError(f"perms must be 'auto', 'none' or an array, got {self.perms!r}")
        return validate_permutations(np.asarray(self.perms), z)

    def fit(
        self,
        R: np.ndarray,
        z: np.ndarray,
        F: np.ndarray,
        E: np.ndarray | None = None,
        progress: Callable[[int, int], None] | None = None,
        geometry: TrainingGeometry | None = None,
    ) -> GDMLModel:
        """Train on forces F (and fit the energy constant to E, if given); ``geometry``,
        the :class:`TrainingGeometry` of R built before (e.g. for every σ of a search),
        saves recomputing it."""
        self._check_params()
        R, z, F, E = check_training_data(R, z, F, E)
        t0 = time.perf_counter()
        if geometry is None:
            geometry = TrainingGeometry(R, self.resolve_perms(R, z))
        else:
            self._check_geometry(geometry, R, z)
        perms, tril_perms, X, J = geometry.perms, geometry.tril_perms, geometry.X, geometry.J
        std = float(F.std())
        if std == 0.0:
            raise DatasetError("all training forces are zero: nothing to learn")
        y = F.reshape(-1) / std
        M, N = R.shape[:2]
        self.solver_ = choose_solver(self.solver, M, N, len(perms), self.max_memory_gb)
        self.solver_info_: dict[str, float] = {}
        t1 = time.perf_counter()
        if self.solver_ == "iterative":
            alpha = self._solve_iterative(X, J, tril_perms, y, M, N)
            t2 = t1 + self.solver_info_["preconditioner_s"]
        else:
            K = self._assemble(geometry, progress)
            t2 = time.perf_counter()
            alpha = solve_cholesky(
                K,
                y,
                self.lam,
                reassemble=lambda: assemble_kernel(
                    X, J, tril_perms, self.sigma, upper_only=False, blocks=geometry.blocks
                ),
            )
        t3 = time.perf_counter()
        V = np.einsum("mdk,mk->md", J, alpha.reshape(M, 3 * N))
        self._set_fitted(z, perms, tril_perms, X, alpha, V, std, 0.0, E is not None)
        if E is not None:
            E0, _ = self.predict(R)
            self.c_ = float(np.mean(E - E0))
            self._build_expansion()
        t4 = time.perf_counter()
        self.timings_ = {
            "setup_s": t1 - t0,
            "assembly_s": t2 - t1,
            "solve_s": t3 - t2,
            "energy_constant_s": t4 - t3,
            "total_s": t4 - t0,
        }
        log.info(
            "trained sGDML model: M=%d, N=%d, P=%d, σ=%g in %.2f s (assembly %.2f s, solve %.2f s)",
            M,
            N,
            len(perms),
            self.sigma,
            t4 - t0,
            t2 - t1,
            t3 - t2,
        )
        return self

    def _check_geometry(self, geometry: TrainingGeometry, R: np.ndarray, z: np.ndarray) -> None:
        """Raise :class:`ModelError` unless ``geometry`` was built for R and (for perms
        other than "auto", which is not searched again) this model's permutations."""
        if geometry.R.shape != R.shape or not np.array_equal(geometry.R, R):
            raise ModelError("the training geometry was built for other geometries")
        if isinstance(self.perms, str) and self.perms == "auto":
            return
        perms = self.resolve_perms(R, z)
        if perms.shape != geometry.perms.shape or not np.array_equal(perms, geometry.perms):
            raise ModelError("the training geometry was built for other permutations")

    def _assemble(
        self, geometry: TrainingGeometry, progress: Callable[[int, int], None] | None
    ) -> np.ndarray:
        """The dense kernel matrix for the analytic solver (upper triangle, C order), in
        :attr:`kernel_buffer` when it is large enough."""
        X, J = geometry.X, geometry.J
        n = X.shape[0] * J.shape[2]
        buffer = self.kernel_buffer
        if buffer is not None and buffer.size >= n * n:
            K = buffer.reshape(-1)[: n * n].reshape(n, n)
        else:
            K = np.empty((n, n))
        # Blocks (i ≥ j) written transposed: the C-ordered upper triangle holds K.
        report = progress or _ProgressLog(f"kernel assembly (σ={self.sigma:g})")
        return assemble_kernel(
            X, J, geometry.tril_perms, self.sigma, out=K, progress=report, blocks=geometry.blocks
        )

    def _solve_iterative(
        self, X: np.ndarray, J: np.ndarray, tril_perms: np.ndarray, y: np.ndarray, M: int, N: int
    ) -> np.ndarray:
        """Coefficients from the Nyström-preconditioned CG solver; sets ``solver_info_``."""
        options = self.iterative or IterativeOptions()
        m = options.n_inducing or max_inducing(M, N, len(tril_perms), self.max_memory_gb * 2**30)
        x0 = self.init_alpha
        if x0 is not None and np.shape(x0) != y.shape:
            x0 = None  # another training set
        alpha, self.solver_info_ = solve_iterative(
            X, J, tril_perms, self.sigma, y, self.lam, m, options, x0=x0
        )
        return alpha

    def _build_expansion(self) -> None:
        self.expansion_ = KernelExpansion(
            self.X_train_, self.V_, self.tril_perms_, self.sigma, self.std_, self.c_
        )

    # -- prediction ---------------------------------------------------------------
    @property
    def n_atoms(self) -> int:
        return int(self.z_.shape[0])

    def check_fitted(self) -> None:
        if not hasattr(self, "expansion_"):
            raise ModelError("model is not trained: call fit() or load a model file first")

    def check_atoms(self, z: np.ndarray, source: str) -> None:
        """Raise :class:`ModelError` unless ``z`` are the atoms the model was trained for."""
        self.check_fitted()
        check_same_atoms(self.z_, z, source)

    def _checked_geometries(self, R: np.ndarray) -> np.ndarray:
        self.check_fitted()
        R = np.asarray(R, dtype=float)
        if R.ndim == 2:
            R = R[None]
        if R.ndim != 3 or R.shape[1:] != (self.n_atoms, 3):
            raise ModelError(
                f"model is for {self.n_atoms} atoms; got geometries of shape {R.shape}"
            )
        if not np.all(np.isfinite(R)):
            raise DatasetError("geometries contain NaN or inf values")
        return R

    def predict(
        self, R: np.ndarray, return_std: bool = False
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energies (Q,) and forces (Q, N, 3) for geometries R (Q, N, 3) or (N, 3); with
        ``return_std`` also the uncertainty (Q,) of the :attr:`uncertainty` estimator."""
        R = self._checked_geometries(R)
        E, F = self.expansion_.predict(R)
        if not return_std:
            return E, F
        return E, F, self.predict_std(R)

    def predict_std(self, R: np.ndarray) -> np.ndarray:
        """The uncertainty (Q,) of geometries R: GP energy std (kcal/mol) for "gp", distance
        to the nearest training geometry (σ) for "nearest"; the estimator is built on the
        first call."""
        R = self._checked_geometries(R)
        if self._estimator is None:
            self._estimator = make_estimator(
                self.uncertainty,
                self.X_train_,
                self.tril_perms_,
                self.sigma,
                self.std_,
                self.lam,
                self.uncertainty_max_size,
            )
        return self._estimator.std(descriptor(R))

    def set_uncertainty(self, method: str, max_size: int = DEFAULT_MAX_SIZE) -> GDMLModel:
        """Use the estimator ``method`` (with ``max_size``) from now on; clears the threshold,
        which belongs to the previous estimator."""
        self.uncertainty, self.uncertainty_max_size = method, max_size
        self._check_params()
        self._estimator = None
        self.uncertainty_threshold_ = None
        return self

    def uncertainty_summary(self) -> dict:
        """The estimator, its unit and its calibrated threshold (None if not calibrated),
        as model cards and the Δ manifest state them."""
        return {
            "method": self.uncertainty,
            "unit": UNCERTAINTY_UNITS[self.uncertainty],
            "threshold": self.uncertainty_threshold_,
        }

    def calibrate_uncertainty(
        self, R_valid: np.ndarray, quantile: float = 1.0, factor: float = 1.0
    ) -> float:
        """Set and return :attr:`uncertainty_threshold_`: ``factor`` × the ``quantile`` of the
        uncertainty over the validation geometries ``R_valid``."""
        self.uncertainty_threshold_ = calibrated_threshold(
            self.predict_std(R_valid), quantile, factor
        )
        return self.uncertainty_threshold_
