"""Length-scale (σ) selection on a validation set, as in sGDML's cross-validation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from deltagdml.errors import ModelError
from deltagdml.gdml.dataset import Dataset
from deltagdml.gdml.metrics import ERROR_COLUMN, error_summary
from deltagdml.gdml.model import GDMLModel, check_training_data
from deltagdml.gdml.solvers.choice import choose_solver
from deltagdml.gdml.solvers.nystrom import IterativeOptions
from deltagdml.settings import TrainingSettings

log = logging.getLogger(__name__)
#: SigmaScore field of each error column of :func:`error_summary`.
_FIELD_OF_COLUMN = {column: q for q, column in ERROR_COLUMN.items()}


@dataclass
class SigmaScore:
    """Validation errors of the model trained with one σ."""

    sigma: float
    f_mae: float
    f_rmse: float
    e_mae: float
    e_rmse: float
    train_s: float

    def as_dict(self) -> dict[str, float]:
        """The scores as a table row, error columns named with their units."""
        row = asdict(self)
        return {ERROR_COLUMN.get(k, k): v for k, v in row.items()}


def select_sigma(
    R: np.ndarray,
    z: np.ndarray,
    F: np.ndarray,
    E: np.ndarray | None,
    R_valid: np.ndarray,
    F_valid: np.ndarray,
    E_valid: np.ndarray | None,
    sigmas: Sequence[float],
    lam: float = 1e-10,
    perms: str | np.ndarray = "auto",
    patience: int = 2,
    max_perms: int = 2048,
    progress: Callable[[str], None] | None = None,
    solver: str = "auto",
    max_memory_gb: float = 16.0,
    iterative: IterativeOptions | None = None,
) -> tuple[GDMLModel, list[SigmaScore]]:
    """Train one model per σ (ascending) and keep the lowest validation force RMSE.

    The search stops early once the validation force RMSE has risen ``patience``
    times in a row. The permutation group and the kernel buffer are shared by all σ;
    ``solver``, ``max_memory_gb`` and ``iterative`` are passed to :class:`GDMLModel`.
    """
    if len(sigmas) == 0:
        raise ModelError("the σ grid is empty")
    if any((not np.isfinite(s)) or s <= 0 for s in sigmas):
        raise ModelError(f"every σ must be positive, got {list(sigmas)}")
    R, z, F, E = check_training_data(R, z, F, E)
    R_valid, _, F_valid, E_valid = check_training_data(R_valid, z, F_valid, E_valid)
    group = GDMLModel(sigma=1.0, perms=perms, max_perms=max_perms).resolve_perms(R, z)
    n = F.size
    analytic = choose_solver(solver, *R.shape[:2], len(group), max_memory_gb) == "analytic"
    buffer = np.empty(n * n) if analytic else None
    best: GDMLModel | None = None
    scores: list[SigmaScore] = []
    rises = 0
    for sigma in sorted(float(s) for s in sigmas):
        t0 = time.perf_counter()
        model = GDMLModel(
            sigma=sigma,
            lam=lam,
            perms=group,
            solver=solver,
            max_memory_gb=max_memory_gb,
            iterative=iterative,
            kernel_buffer=buffer,
        ).fit(R, z, F, E)
        train_s = time.perf_counter() - t0
        E_pred, F_pred = model.predict(R_valid)
        err = error_summary(E_pred if E is not None else None, F_pred, E_valid, F_valid)
        fields = {_FIELD_OF_COLUMN[k]: v for k, v in err.items()}
        score = SigmaScore(sigma=sigma, train_s=train_s, **fields)
        scores.append(score)
        message = (
            f"σ={sigma:g}: validation force MAE {score.f_mae:.4f}, RMSE {score.f_rmse:.4f} "
            f"kcal/mol/Å; energy MAE {score.e_mae:.4f} kcal/mol ({train_s:.1f} s)"
        )
        log.info(message)
        if progress is not None:
            progress(message)
        if best is None or score.f_rmse < min(s.f_rmse for s in scores[:-1]):
            best = model
        if len(scores) > 1 and score.f_rmse > scores[-2].f_rmse:
            rises += 1
            if rises >= patience:
                break
        else:
            rises = 0
    assert best is not None
    return best, scores


def select_sigma_configured(
    train: Dataset,
    valid: Dataset,
    settings: TrainingSettings,
    perms: np.ndarray | str | None,
    checkpoint_dir: str | None = None,
) -> tuple[GDMLModel, list[SigmaScore]]:
    """:func:`select_sigma` with the workflow's ``training`` settings (σ grid, λ, patience,
    solver, memory limit, CG tolerance); ``checkpoint_dir`` keeps CG state for resuming."""
    return select_sigma(
        train.R,
        train.z,
        train.F,
        train.E,
        valid.R,
        valid.F,
        valid.E,
        sigmas=settings.sigmas,
        lam=settings.lam,
        perms=perms,
        patience=settings.patience,
        max_perms=settings.max_perms,
        solver=settings.solver,
        max_memory_gb=settings.max_memory_gb,
        iterative=IterativeOptions(tol=settings.solver_tol, checkpoint_dir=checkpoint_dir),
    )
