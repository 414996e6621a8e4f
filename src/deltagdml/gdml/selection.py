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
    #: how σ came to be tried: grid, coarse, fine, extension, subset_… or refit
    #: (:func:`select_sigma`)
    stage: str = "grid"

    def as_dict(self) -> dict[str, float]:
        """The scores as a table row, error columns named with their units."""
        row = asdict(self)
        return {ERROR_COLUMN.get(k, k): v for k, v in row.items()}


#: σ search strategies: every grid value in ascending order ("grid"), or every second
#: value first and then the neighbours of the best ("coarse_to_fine").
SEARCHES = ("grid", "coarse_to_fine")


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
    search: str = "grid",
    extend: bool = True,
    max_extensions: int = 4,
    warm_start: bool = False,
    subset: int | None = None,
) -> tuple[GDMLModel, list[SigmaScore]]:
    """Train models over the σ grid and keep the lowest validation force RMSE.

    ``search="grid"`` trains every σ in ascending order and stops once the validation
    force RMSE has risen ``patience`` times in a row. ``"coarse_to_fine"`` trains every
    second σ that way, then the grid neighbours of the best one: the same answer as the
    full grid when the validation error is unimodal along the grid, with fewer fits.
    With ``extend``, a best σ at either end of the grid is followed outwards by the
    grid's own end ratio until the validation error rises (at most ``max_extensions``
    steps). Each score records its ``stage``: grid, coarse, fine or extension.

    The permutation group and the kernel buffer are shared by all σ; with ``warm_start``
    the iterative solver starts from the coefficients of the nearest σ trained before
    (the analytic one needs no start). With ``subset`` smaller than the training set, the
    search runs on a nested subset of that many geometries (a seeded random choice) and
    the chosen σ is fitted once on the whole set (stages ``subset_…`` and ``refit``).
    ``solver``,
    ``max_memory_gb`` and ``iterative`` are passed to :class:`GDMLModel`.
    """
    if len(sigmas) == 0:
        raise ModelError("the σ grid is empty")
    if any((not np.isfinite(s)) or s <= 0 for s in sigmas):
        raise ModelError(f"every σ must be positive, got {list(sigmas)}")
    if search not in SEARCHES:
        raise ModelError(f"σ search must be one of {SEARCHES}, got {search!r}")
    R, z, F, E = check_training_data(R, z, F, E)
    R_valid, _, F_valid, E_valid = check_training_data(R_valid, z, F_valid, E_valid)
    group = GDMLModel(sigma=1.0, perms=perms, max_perms=max_perms).resolve_perms(R, z)
    if subset is not None and subset < len(R):  # the group of the whole set, found once
        return _select_on_subset(
            R, z, F, E, R_valid, F_valid, E_valid, sigmas, subset,
            lam=lam, perms=group, patience=patience, max_perms=max_perms, progress=progress,
            solver=solver, max_memory_gb=max_memory_gb, iterative=iterative, search=search,
            extend=extend, max_extensions=max_extensions, warm_start=warm_start,
        )  # fmt: skip
    n = F.size
    analytic = choose_solver(solver, *R.shape[:2], len(group), max_memory_gb) == "analytic"
    buffer = np.empty(n * n) if analytic else None
    models: dict[float, GDMLModel] = {}
    scores: list[SigmaScore] = []

    def train(sigma: float, stage: str) -> SigmaScore:
        nearest = min(models, key=lambda s: abs(np.log(s / sigma)), default=None)
        t0 = time.perf_counter()
        model = GDMLModel(
            sigma=sigma,
            lam=lam,
            perms=group,
            solver=solver,
            max_memory_gb=max_memory_gb,
            iterative=iterative,
            kernel_buffer=buffer,
            init_alpha=None
            if analytic or nearest is None or not warm_start
            else models[nearest].alpha_,
        ).fit(R, z, F, E)
        train_s = time.perf_counter() - t0
        E_pred, F_pred = model.predict(R_valid)
        err = error_summary(E_pred if E is not None else None, F_pred, E_valid, F_valid)
        fields = {_FIELD_OF_COLUMN[k]: v for k, v in err.items()}
        score = SigmaScore(sigma=sigma, train_s=train_s, stage=stage, **fields)
        models[sigma] = model
        scores.append(score)
        message = (
            f"σ={sigma:g} ({stage}): validation force MAE {score.f_mae:.4f}, RMSE "
            f"{score.f_rmse:.4f} kcal/mol/Å; energy MAE {score.e_mae:.4f} kcal/mol "
            f"({train_s:.1f} s)"
        )
        log.info(message)
        if progress is not None:
            progress(message)
        return score

    def best_sigma() -> float:
        return min(scores, key=lambda s: s.f_rmse).sigma  # the first of equal ones

    grid = sorted({float(s) for s in sigmas})
    if search == "grid":
        _ascending(grid, lambda s: train(s, "grid"), patience)
    else:
        _ascending(grid[::2], lambda s: train(s, "coarse"), patience)
        i = grid.index(best_sigma())
        for j in (i - 1, i + 1):
            if 0 <= j < len(grid) and grid[j] not in models:
                train(grid[j], "fine")
    if extend and len(grid) > 1:
        for end, ratio in ((grid[0], grid[0] / grid[1]), (grid[-1], grid[-1] / grid[-2])):
            sigma, steps = end, 0
            while best_sigma() == sigma and steps < max_extensions:
                sigma, steps = sigma * ratio, steps + 1
                train(sigma, "extension")
            if best_sigma() == sigma and steps:
                log.warning("σ=%g is still the best after %d extensions of the grid", sigma, steps)
    best = models[best_sigma()]
    best.kernel_buffer = None  # the search's scratch: a kept model must not pin (3N·M)² floats
    return best, scores


def _select_on_subset(
    R: np.ndarray,
    z: np.ndarray,
    F: np.ndarray,
    E: np.ndarray | None,
    R_valid: np.ndarray,
    F_valid: np.ndarray,
    E_valid: np.ndarray | None,
    sigmas: Sequence[float],
    subset: int,
    **options,
) -> tuple[GDMLModel, list[SigmaScore]]:
    """σ searched on ``subset`` training geometries, then one fit on all of them."""
    idx = np.sort(np.random.default_rng(0).permutation(len(R))[:subset])
    E_sub = None if E is None else E[idx]
    _, scores = select_sigma(R[idx], z, F[idx], E_sub, R_valid, F_valid, E_valid, sigmas, **options)
    for score in scores:
        score.stage = f"subset_{score.stage}"
    sigma = min(scores, key=lambda s: s.f_rmse).sigma
    options = {**options, "extend": False, "search": "grid"}
    model, final = select_sigma(R, z, F, E, R_valid, F_valid, E_valid, [sigma], **options)
    final[0].stage = "refit"
    return model, [*scores, final[0]]


def _ascending(grid: list[float], train: Callable[[float], SigmaScore], patience: int) -> None:
    """Train σ in ascending order until the validation force RMSE has risen ``patience``
    times in a row."""
    rises, previous = 0, None
    for sigma in grid:
        score = train(sigma)
        rises = rises + 1 if previous is not None and score.f_rmse > previous.f_rmse else 0
        if rises >= patience:
            return
        previous = score


def select_sigma_configured(
    train: Dataset,
    valid: Dataset,
    settings: TrainingSettings,
    perms: np.ndarray | str | None,
    checkpoint_dir: str | None = None,
) -> tuple[GDMLModel, list[SigmaScore]]:
    """:func:`select_sigma` with the workflow's ``training`` settings (σ grid and search, λ,
    patience, solver, memory limit, CG tolerance); ``checkpoint_dir`` keeps CG state for
    resuming."""
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
        search=settings.sigma_search,
        extend=settings.extend_sigmas,
        warm_start=settings.cg_warm_start,
        subset=settings.sigma_subset,
    )
