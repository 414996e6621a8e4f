"""Length-scale (σ) selection on a validation set, as in sGDML's cross-validation.

The criterion is the validation force MAE (:data:`CRITERION`): a few extreme frames (on
the repulsive wall, where binding forces have heavy tails) dominate the RMSE and can pull
it to a σ far below the one that predicts the other frames best. No σ is tried below
:func:`sigma_floor`, where the kernel between neighbouring training geometries vanishes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq

from deltagdml.errors import ModelError
from deltagdml.gdml.dataset import Dataset
from deltagdml.gdml.descriptor import descriptor
from deltagdml.gdml.kernel import matern, min_sq_distances
from deltagdml.gdml.metrics import ERROR_COLUMN, F_MAE, error_summary, r2
from deltagdml.gdml.model import GDMLModel, TrainingGeometry, check_training_data
from deltagdml.gdml.solvers.choice import choose_solver, estimate_memory, training_mem_mb
from deltagdml.gdml.solvers.nystrom import IterativeOptions
from deltagdml.gdml.symmetry import descriptor_permutation
from deltagdml.settings import TrainingSettings

log = logging.getLogger(__name__)
#: SigmaScore field of each error column of :func:`error_summary`.
_FIELD_OF_COLUMN = {column: q for q, column in ERROR_COLUMN.items()}
#: The validation error σ is chosen by (lowest wins), as named in the scores table.
CRITERION = F_MAE
#: Smallest Matérn-5/2 kernel value κ(d_nn) between neighbouring training geometries that
#: a σ may give (:func:`sigma_floor`): at κ(d_nn) = 0.11 the methane dimer's binding model
#: explained nothing of its validation forces (R² −0.07).
KERNEL_FLOOR = 0.1


@dataclass
class SigmaScore:
    """Validation errors of the model trained with one σ."""

    sigma: float
    f_mae: float
    f_rmse: float
    e_mae: float
    e_rmse: float
    train_s: float
    #: how σ came to be tried: bracket, grid, coarse, fine, extension, subset_… or refit
    #: (:func:`select_sigma`)
    stage: str = "grid"
    #: explained variance of the validation forces (:func:`~deltagdml.gdml.metrics.r2`)
    f_r2: float = float("nan")
    #: kernel κ(d_nn) between neighbouring training geometries at this σ (:func:`sigma_floor`)
    kernel_nn: float = float("nan")
    #: the smallest σ the search may try (:func:`sigma_floor`; 0: no floor)
    sigma_floor: float = 0.0
    #: the column σ is chosen by, lowest first
    criterion: str = CRITERION

    def as_dict(self) -> dict[str, float]:
        """The scores as a table row, error columns named with their units."""
        row = asdict(self)
        return {ERROR_COLUMN.get(k, k): v for k, v in row.items()}


#: σ search strategies: from the grid value nearest :func:`start_sigma` downhill to a
#: grid σ whose neighbours are both worse ("bracket"), every grid value in ascending order
#: ("grid"), or every second value first and then the neighbours of the best
#: ("coarse_to_fine").
SEARCHES = ("bracket", "grid", "coarse_to_fine")
#: σ / median pairwise descriptor distance of the training geometries where the bracket
#: search starts (:func:`start_sigma`). The default systems' searches ended at ratios of
#: 15–220 (11 of their 15 parts at 38–60); the start only decides how many fits it takes.
START_RATIO = 45.0


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
    search: str = "bracket",
    extend: bool = True,
    max_extensions: int = 4,
    warm_start: bool = False,
    subset: int | None = None,
) -> tuple[GDMLModel, list[SigmaScore]]:
    """Train models over the σ grid and keep the lowest validation force MAE
    (:data:`CRITERION`; the first of equal ones).

    ``search="bracket"`` starts at the grid value nearest :func:`start_sigma` and trains
    both grid neighbours of the best σ so far until neither is better: a bracketed minimum
    of the validation force MAE along the grid, the grid's own best whenever the error is
    unimodal along it, in three fits when the start is right. ``"grid"`` trains every σ in
    ascending order and stops once the validation force MAE has risen ``patience`` times in
    a row. ``"coarse_to_fine"`` trains every
    second σ that way, then the grid neighbours of the best one: the same answer as the
    full grid when the validation error is unimodal along the grid, with fewer fits.
    With ``extend``, a best σ at either end of the grid is followed outwards by the
    grid's own end ratio until the validation error rises (at most ``max_extensions``
    steps). Each score records its ``stage``: grid, coarse, fine or extension.

    No σ below :func:`sigma_floor` of the training geometries is tried: grid values
    below it are skipped (all but the largest, if none is above it) and the extension
    downwards stops there, each with a log line; every score records the floor and
    κ(d_nn) at its σ.

    The permutation group, the :class:`~deltagdml.gdml.model.TrainingGeometry` (with up
    to :func:`kernel_cache_bytes` of σ-independent kernel terms) and the kernel buffer are
    shared by all σ; with ``warm_start``
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
    d_nn = nearest_neighbour_distance(R, group)
    floor = sigma_floor(d_nn)
    n = F.size
    analytic = choose_solver(solver, *R.shape[:2], len(group), max_memory_gb) == "analytic"
    buffer = np.empty(n * n) if analytic else None
    cache_bytes = 0
    if analytic:
        granted = 1 if isinstance(perms, str) and perms == "none" else max_perms
        cache_bytes = kernel_cache_bytes(*R.shape[:2], len(group), granted, max_memory_gb, solver)
    geometry = TrainingGeometry(R, group, cache_bytes)
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
        ).fit(R, z, F, E, geometry=geometry)
        train_s = time.perf_counter() - t0
        E_pred, F_pred = model.predict(R_valid)
        err = error_summary(E_pred if E is not None else None, F_pred, E_valid, F_valid)
        fields = {_FIELD_OF_COLUMN[k]: v for k, v in err.items()}
        score = SigmaScore(
            sigma=sigma,
            train_s=train_s,
            stage=stage,
            f_r2=r2(F_pred, F_valid),
            kernel_nn=float(matern(d_nn, sigma)),
            sigma_floor=floor,
            **fields,
        )
        models[sigma] = model
        scores.append(score)
        message = (
            f"σ={sigma:g} ({stage}): validation force MAE {score.f_mae:.4f}, RMSE "
            f"{score.f_rmse:.4f} kcal/mol/Å, R² {score.f_r2:.3f}; energy MAE "
            f"{score.e_mae:.4f} kcal/mol; κ(d_nn) {score.kernel_nn:.3g} ({train_s:.1f} s)"
        )
        log.info(message)
        if progress is not None:
            progress(message)
        return score

    def best_sigma() -> float:
        return _best(scores).sigma

    given = sorted({float(s) for s in sigmas})
    grid = [s for s in given if s >= floor] or given[-1:]
    message = (
        f"σ chosen by the lowest validation force MAE, not below the floor {floor:.3g}: "
        f"κ = {KERNEL_FLOOR:g} at the training geometries' median nearest-neighbour "
        f"descriptor distance d_nn = {d_nn:.3g} Å⁻¹"
    )
    log.info(message)
    if progress is not None:
        progress(message)
    if len(grid) < len(given):
        below = ", ".join(f"{s:g}" for s in given if s < floor and s not in grid)
        log.warning("σ = %s below the floor %.3g: skipped", below, floor)
    if grid[0] < floor:
        log.warning(
            "every σ lies below the floor %.3g: only the largest, %g, is tried", floor, grid[0]
        )
    if search == "bracket":
        i = int(np.argmin(np.abs(np.log(np.asarray(grid) / start_sigma(geometry.X)))))
        train(grid[i], "bracket")
        while True:
            for j in (i - 1, i + 1):
                if 0 <= j < len(grid) and grid[j] not in models:
                    train(grid[j], "bracket")
            lowest = grid.index(best_sigma())
            if lowest == i:
                break
            i = lowest
    elif search == "grid":
        _ascending(grid, lambda s: train(s, "grid"), patience)
    else:
        _ascending(grid[::2], lambda s: train(s, "coarse"), patience)
        i = grid.index(best_sigma())
        for j in (i - 1, i + 1):
            if 0 <= j < len(grid) and grid[j] not in models:
                train(grid[j], "fine")
    ends = grid if len(grid) > 1 else given  # the end ratios of the grid searched
    if extend and len(ends) > 1:
        for end, ratio in ((grid[0], ends[0] / ends[1]), (grid[-1], ends[-1] / ends[-2])):
            sigma, steps = end, 0
            floored = ratio < 1 and sigma * ratio < floor
            while best_sigma() == sigma and steps < max_extensions and not floored:
                sigma, steps = sigma * ratio, steps + 1
                train(sigma, "extension")
                floored = ratio < 1 and sigma * ratio < floor
            if best_sigma() == sigma and floored:
                log.warning("σ=%g is the best; the floor %.3g stops the extension", sigma, floor)
            elif best_sigma() == sigma and steps:
                log.warning("σ=%g is still the best after %d extensions", sigma, steps)
    best = models[best_sigma()]
    best.kernel_buffer = None  # the search's scratch: a kept model must not pin (3N·M)² floats
    return best, scores


def kernel_cache_bytes(
    n_train: int,
    n_atoms: int,
    n_perms: int,
    granted_perms: int,
    max_memory_gb: float,
    solver: str = "auto",
) -> int:
    """Bytes of σ-independent kernel terms a σ search with the analytic solver may keep:
    the memory a training job is granted for ``granted_perms`` permutations (the
    workflow's request, :func:`~deltagdml.gdml.solvers.choice.training_mem_mb`, is for
    ``max_perms``, or 1 without symmetries; at most ``max_memory_gb``) less the estimate
    for the ``n_perms`` the group has; 0 when nothing is left (every block computed at
    every σ, as without cache)."""
    granted = training_mem_mb(n_train, n_atoms, granted_perms, max_memory_gb, solver) * 2**20
    granted = min(granted, int(max_memory_gb * 2**30))
    return max(0, granted - estimate_memory(n_train, n_atoms, n_perms, "analytic"))


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
    sigma = _best(scores).sigma
    options = {**options, "extend": False, "search": "grid"}
    model, final = select_sigma(R, z, F, E, R_valid, F_valid, E_valid, [sigma], **options)
    final[0].stage = "refit"
    return model, [*scores, final[0]]


def _error(score: SigmaScore) -> float:
    """The validation error σ is chosen by (:data:`CRITERION`)."""
    return getattr(score, _FIELD_OF_COLUMN[CRITERION])


def _best(scores: list[SigmaScore]) -> SigmaScore:
    """The score with the lowest :data:`CRITERION`, the first of equal ones."""
    return min(scores, key=_error)


def _ascending(grid: list[float], train: Callable[[float], SigmaScore], patience: int) -> None:
    """Train σ in ascending order until the validation error (:data:`CRITERION`) has risen
    ``patience`` times in a row."""
    rises, previous = 0, None
    for sigma in grid:
        score = train(sigma)
        rises = rises + 1 if previous is not None and _error(score) > _error(previous) else 0
        if rises >= patience:
            return
        previous = score


def nearest_neighbour_distance(R: np.ndarray, perms: np.ndarray) -> float:
    """d_nn: the median over geometries ``R`` (M, N, 3) of the inverse-distance descriptor
    distance (Å⁻¹) to the nearest other geometry, minimised over the atom permutations
    ``perms`` (P, N) as in the kernel; NaN for fewer than two geometries."""
    X = descriptor(R)
    M = len(X)
    if M < 2:
        return float("nan")
    tril_perms = np.array([descriptor_permutation(perm) for perm in perms])
    d2 = min_sq_distances(X, X, tril_perms)
    d2[np.arange(M), np.arange(M)] = np.inf
    return float(np.median(np.sqrt(d2.min(axis=1))))


def start_sigma(X: np.ndarray) -> float:
    """Where the bracket search starts: :data:`START_RATIO` × the median pairwise Euclidean
    distance (Å⁻¹) of the training descriptors ``X`` (M, D) (the kernel-bandwidth median
    heuristic; permutations ignored); 1 for fewer than two distinct geometries."""
    sq = np.einsum("md,md->m", X, X)
    d2 = sq[:, None] + sq[None, :] - 2.0 * X @ X.T
    d = np.sqrt(np.clip(d2[np.triu_indices(len(X), 1)], 0.0, None))
    median = float(np.median(d)) if d.size else 0.0
    return START_RATIO * median if median > 0 else 1.0


def sigma_floor(d_nn: float) -> float:
    """The σ (Å⁻¹) at which κ(d_nn) = :data:`KERNEL_FLOOR` (:func:`matern`): below it the
    kernel between neighbouring training geometries (d_nn: :func:`nearest_neighbour_distance`)
    vanishes and the model learns next to nothing. 0 (no floor) when d_nn is undefined."""
    if not np.isfinite(d_nn):
        return 0.0
    u = brentq(lambda u: float(matern(u, np.sqrt(5.0))) - KERNEL_FLOOR, 0.0, 100.0)  # κ at u
    return float(np.sqrt(5.0) * d_nn / u)


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
