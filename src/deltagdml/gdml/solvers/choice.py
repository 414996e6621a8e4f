"""Choice of the solver for the kernel system (K + λI) α = y, and its memory.

The analytic solver stores the dense kernel matrix (8·(3N·M)² bytes); the iterative
solver (:mod:`deltagdml.gdml.solvers.nystrom`) stores the block rows of m inducing geometries
(8·m·3N·3N·M bytes). ``solver="auto"`` picks the analytic one whenever it fits.
"""

from __future__ import annotations

import math

from deltagdml.errors import ModelError
from deltagdml.gdml.parallel import available_threads
from deltagdml.gdml.solvers.cholesky import CHOLESKY_BLOCK

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
