"""Physical checks on every dataset that is read: numbers, cells, geometries, labels.

Geometries in Å, energies in kcal/mol and forces in kcal/mol/Å (the statistics below are
unit-free ratios, so a whole dataset in another consistent unit passes them; mixed units
do not). Clear corruption raises :class:`DatasetError` naming the source and the frames;
milder findings are logged as warnings naming the frames.

- **Real finite numbers**: complex arrays are refused (their imaginary part would be dropped
  silently), NaN and inf are refused.
- **Gas phase**: a periodic cell is refused unless ``ignore_pbc`` says to drop it.
- **Shortest distance**: two atoms closer than ``MIN_DISTANCE`` Å.
- **Length scale against covalent radii**: each atom's nearest-neighbour distance divided by
  the sum of the two atoms' covalent radii is ~1 for a bonded atom in Å (C–H 1.02, O–H 0.99)
  and ~1.9 in bohr. A median over the hydrogens and frames above ``BOND_RATIO`` is refused
  (a hydrogen is bonded in nearly every molecule); without hydrogens, a median over all
  atoms but noble gases (van der Waals contacts: Ar₂ 1.77) above it is warned about.
- **Length scale across frames** (N ≥ 3): each atom's nearest-neighbour distance divided
  by its median over the frames; the median of that over atoms must lie within
  ``1/SCALE_RATIO`` .. ``SCALE_RATIO`` in every frame. Frames in bohr (×1.89) or nm (×0.1)
  among Å frames fail; the largest deviation on the default pipeline's datasets is ×1.057.
- **Rounded coordinates** (labelled data only): a frame whose coordinates are all multiples
  of their smallest spacing ``g`` (at least 6 distinct values) is rounded to a grid; ``g``
  ≥ ``GRID_ERROR`` Å is refused, ``g`` ≥ ``GRID_WARN`` Å warned about.
- **Energy scale**: against the frame ``m`` of median energy, a path integral of the forces
  along the straight line can change the energy by at most ``max|F| · |R_i − R_m|``; the
  ratio ``|E_i − E_m| / (max(|F_i|, |F_m|, median |F|) · |R_i − R_m|)`` (norms over all
  3N components, centred geometries) is ≤ 1 for a harmonic well and ≤ 0.35 on the default
  pipeline's datasets; frames above ``ENERGY_OFFSET`` are refused (a block of energies in
  other units: ≥ 128).
- **Energy–force consistency**: for pairs of each frame and its ``N_NEIGHBOURS`` nearest
  frames in geometry space (unordered datasets are fine), the trapezoid rule predicts
  ``ΔE_ij ≈ −½ (F_i + F_j) · (R_j − R_i)``. The median over pairs of
  ``|ΔE − ΔE_pred| / (|ΔE| + |ΔE_pred|)`` (0: consistent, ≤ 1) is ≤ 0.16 on the default
  pipeline's datasets and ≥ 0.91 for energies scaled by 23 or 1/23 or shuffled; above
  ``PAIR_RESIDUAL`` the dataset is refused. A frame whose every pair has
  ``|ΔE − ΔE_pred| > FRAME_RESIDUAL · ½ (|F_i| + |F_j|) |R_j − R_i|`` (≤ 0.10 on clean
  data) is warned about. Energy differences within the noise floor (``ENERGY_NOISE``
  kcal/mol, or 1e-7 × max |E|: extxyz keeps ~8 digits) are not judged: pairs with
  ``|ΔE| + |ΔE_pred|`` below twice it are left out, and it is subtracted from each
  residual. Needs ``MIN_PAIR_FRAMES`` frames and as many judged pairs; at most
  ``MAX_PAIR_FRAMES`` frames (a fixed random subset) enter the pairs.
"""

from __future__ import annotations

import logging

import numpy as np
from ase.data import covalent_radii

from deltagdml.errors import DatasetError

log = logging.getLogger(__name__)

#: Shortest interatomic distance (Å) a geometry may have (H2: 0.74 Å). Below it, positions
#: are not in the stated unit (Å read as bohr: C–H 0.58 Å) or two atoms coincide.
MIN_DISTANCE = 0.6
SCALE_RATIO = 1.5
BOND_RATIO = 1.5
NOBLE_GASES = (2, 10, 18, 36, 54, 86)
GRID_ERROR = 0.05
GRID_WARN = 0.005
ENERGY_OFFSET = 3.0
PAIR_RESIDUAL = 0.5
FRAME_RESIDUAL = 0.5
N_NEIGHBOURS = 3
MIN_PAIR_FRAMES = 10
ENERGY_NOISE = 0.05
MAX_PAIR_FRAMES = 2000
_CHUNK = 256


def frames_text(frames: np.ndarray, total: int) -> str:
    """``frames [3, 7, …] (12 of 400)`` for messages."""
    frames = np.asarray(frames).ravel()
    shown = ", ".join(str(int(i)) for i in frames[:10])
    return f"frames [{shown}{', …' if frames.size > 10 else ''}] ({frames.size} of {total})"


def check_real(key: str, arr: np.ndarray, source: str) -> None:
    """Refuse a complex or non-numeric array, or one holding NaN or inf."""
    arr = np.asarray(arr)
    if np.iscomplexobj(arr):
        raise DatasetError(
            f"{source}: '{key}' is complex-valued (dtype {arr.dtype}); real numbers expected"
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DatasetError(f"{source}: '{key}' must be numeric, got dtype {arr.dtype}")
    finite = np.isfinite(arr)
    if not np.all(finite):
        bad = np.unique(np.nonzero(~finite)[0]) if arr.ndim else np.array([0])
        raise DatasetError(
            f"{source}: '{key}' contains NaN or inf values (geometries {bad[:10].tolist()}"
            f"{' …' if bad.size > 10 else ''})"
        )


def check_periodic(periodic: bool, source: str, ignore_pbc: bool = False) -> None:
    """Refuse a periodic cell: these models are gas-phase; ``ignore_pbc`` drops the cell."""
    if not periodic:
        return
    if not ignore_pbc:
        raise DatasetError(
            f"{source}: the data carry a periodic cell (pbc or lattice); the models are "
            "gas-phase, so the cell would be dropped. Pass ignore_pbc=True (--ignore-pbc) "
            "to use the positions as an isolated system"
        )
    log.warning("%s: periodic cell ignored; positions used as an isolated system", source)


def nearest_distances(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each atom's distance (Å) to its nearest other atom and that atom's index, both
    (M, N), for N ≥ 2."""
    N = R.shape[1]
    out, partner = np.empty(R.shape[:2]), np.empty(R.shape[:2], dtype=np.intp)
    for start in range(0, len(R), _CHUNK):
        block = R[start : start + _CHUNK]
        block = block - block.mean(axis=1, keepdims=True)
        sq = np.einsum("mij,mij->mi", block, block)
        d2 = sq[:, :, None] + sq[:, None] - 2.0 * (block @ block.transpose(0, 2, 1))
        d2[:, np.arange(N), np.arange(N)] = np.inf
        k = d2.argmin(axis=2)
        partner[start : start + _CHUNK] = k
        nearest = np.take_along_axis(d2, k[..., None], axis=2)[..., 0]
        out[start : start + _CHUNK] = np.sqrt(np.maximum(nearest, 0.0))
    return out, partner


def check_distances(R: np.ndarray, source: str, nearest: np.ndarray | None = None) -> None:
    """Refuse geometries ``R`` (M, N, 3) in Å whose closest atom pair is implausibly close."""
    if R.shape[1] < 2:
        return
    d = (nearest_distances(R)[0] if nearest is None else nearest).min(axis=1)
    bad = np.flatnonzero(~(d >= MIN_DISTANCE))
    if bad.size:
        m = int(bad[0])
        raise DatasetError(
            f"{source}: geometry {m} has two atoms {d[m]:.3f} Å apart (minimum "
            f"{MIN_DISTANCE} Å); are the positions in another length unit?"
        )


def bond_ratios(z: np.ndarray, nearest: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """(M, N): each atom's nearest-neighbour distance over the sum of the two atoms'
    covalent radii (``nearest``, ``partner``: :func:`nearest_distances`)."""
    radii = covalent_radii[np.asarray(z)]
    return nearest / (radii + radii[partner])


def check_bond_scale(z: np.ndarray, nearest: np.ndarray, partner: np.ndarray, source: str) -> None:
    """Refuse positions whose hydrogens sit ~1.9× their covalent bond length from every
    atom (bohr read as Å); without hydrogens, warn when the atoms other than noble gases
    do."""
    z = np.asarray(z)
    ratio = bond_ratios(z, nearest, partner)
    hydrogens = z == 1
    if hydrogens.any():
        value = float(np.median(ratio[:, hydrogens]))
        if value > BOND_RATIO:
            raise DatasetError(
                f"{source}: the hydrogens' nearest atoms are a median {value:.2f} × their "
                f"covalent bond length away (bonded: ~1, bohr read as Å: ~1.89; limit "
                f"{BOND_RATIO}); are the positions in bohr?"
            )
        return
    bonding = ~np.isin(z, NOBLE_GASES)  # a noble gas's neighbours are at van der Waals range
    if not bonding.any():
        return
    value = float(np.median(ratio[:, bonding]))
    if value > BOND_RATIO:
        log.warning(
            "%s: the atoms' nearest neighbours are a median %.2f × their covalent bond length "
            "away (bonded: ~1, bohr read as Å: ~1.89); are the positions in bohr?",
            source,
            value,
        )


def scale_ratios(nearest: np.ndarray) -> np.ndarray:
    """(M,): per frame, the median over atoms of each atom's nearest-neighbour distance
    over its median over the frames."""
    ref = np.percentile(nearest, 50, axis=0, method="lower")
    return np.median(nearest / ref, axis=1)


def check_length_scale(nearest: np.ndarray, source: str) -> None:
    """Refuse frames whose nearest-neighbour distances jump (mixed length units)."""
    if nearest.shape[1] < 3 or len(nearest) < 2:
        return
    ratio = scale_ratios(nearest)
    bad = np.flatnonzero((ratio > SCALE_RATIO) | (ratio < 1 / SCALE_RATIO))
    if bad.size:
        raise DatasetError(
            f"{source}: in {frames_text(bad, len(ratio))} the atoms' nearest-neighbour "
            f"distances are {ratio[bad].min():.3g}–{ratio[bad].max():.3g} × their medians "
            f"over the dataset (median over atoms; allowed ×{1 / SCALE_RATIO:.2f}–"
            f"{SCALE_RATIO}): mixed length units (bohr ×1.89, nm ×0.1)?"
        )


def _grid_spacing(values: np.ndarray) -> np.ndarray:
    """Per row, the spacing g if all values are multiples of their smallest gap, else 0."""
    v = np.sort(values, axis=1)
    tol = 1e-9 * max(float(np.abs(v).max()), 1.0)
    gaps = np.diff(v, axis=1)
    distinct = (gaps > tol).sum(axis=1) + 1
    g = np.where(gaps > tol, gaps, np.inf).min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = v / g[:, None]
        on_grid = np.all(np.abs(q - np.round(q)) < 1e-6 * np.maximum(1.0, np.abs(q)), axis=1)
    return np.where(on_grid & (distinct >= 6) & np.isfinite(g), g, 0.0)


def check_grid(R: np.ndarray, source: str) -> None:
    """Refuse coordinates rounded to a coarse grid (integers, 0.1 Å); warn for 0.01 Å."""
    g = _grid_spacing(R.reshape(len(R), -1))
    g_all = _grid_spacing(R.reshape(1, -1))[0]
    g = np.where(g > 0, g, g_all)
    bad = np.flatnonzero(g >= GRID_ERROR)
    if bad.size:
        raise DatasetError(
            f"{source}: the coordinates of {frames_text(bad, len(R))} lie on a grid of "
            f"{g[bad].max():.3g} Å (rounded, e.g. to integers); the labels belong to other "
            "positions"
        )
    warn = np.flatnonzero(g >= GRID_WARN)
    if warn.size:
        log.warning(
            "%s: the coordinates of %s are rounded to %.3g Å; labels computed at unrounded "
            "positions will not match them exactly",
            source,
            frames_text(warn, len(R)),
            g[warn].max(),
        )


def check_geometries(R: np.ndarray, z: np.ndarray, source: str, labelled: bool = False) -> None:
    """Real finite positions, no close contacts, Å, one length unit; coarse grids if
    labelled."""
    check_real("R", R, source)
    if labelled:
        check_grid(R, source)
    if R.shape[1] >= 2:
        nearest, partner = nearest_distances(R)
        check_distances(R, source, nearest)
        check_bond_scale(z, nearest, partner, source)
        check_length_scale(nearest, source)


def _neighbour_pairs(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique pairs (i < j) of each row of ``X`` and its nearest rows (duplicates skipped)."""
    sq = np.einsum("ij,ij->i", X, X)
    D = sq[:, None] + sq[None] - 2.0 * (X @ X.T)
    D[D <= 1e-12 * max(float(sq.max()), 1.0)] = np.inf
    np.fill_diagonal(D, np.inf)
    k = min(N_NEIGHBOURS, len(X) - 1)
    nn = np.argpartition(D, k - 1, axis=1)[:, :k]
    i = np.repeat(np.arange(len(X)), k)
    keep = np.isfinite(D[i, nn.ravel()])
    pairs = np.unique(np.sort(np.stack([i[keep], nn.ravel()[keep]], axis=1), axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def energy_force_statistics(R: np.ndarray, E: np.ndarray, F: np.ndarray) -> dict:
    """The statistics of :func:`check_energy_forces` (module docstring): ``offset`` (M,)
    each frame's energy offset ratio against frame ``median_frame``; and with enough
    frames and informative pairs, ``pairs`` (i, j), ``pair_residual`` (the median
    relative residual), ``slope`` (ΔE over ΔE_forces) and ``frame_residual`` (M,) each
    frame's smallest scaled residual (inf: in no judged pair)."""
    M = len(R)
    X = (R - R.mean(axis=1, keepdims=True)).reshape(M, -1)
    Ff = F.reshape(M, -1)
    fnorm = np.linalg.norm(Ff, axis=1)
    m = int(np.argsort(E, kind="stable")[M // 2])
    bound = np.maximum(np.maximum(fnorm, fnorm[m]), np.median(fnorm))
    bound = bound * np.linalg.norm(X - X[m], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(bound > 0, np.abs(E - E[m]) / bound, 0.0)
    out = {"median_frame": m, "offset": offset}
    if M < MIN_PAIR_FRAMES:
        return out
    sub = np.arange(M)
    if M > MAX_PAIR_FRAMES:
        sub = np.sort(np.random.default_rng(0).choice(M, MAX_PAIR_FRAMES, replace=False))
    i, j = _neighbour_pairs(X[sub])
    i, j = sub[i], sub[j]
    d = X[j] - X[i]
    dE_pred = -0.5 * np.einsum("ij,ij->i", Ff[i] + Ff[j], d)
    dE_obs = E[j] - E[i]
    floor = max(ENERGY_NOISE, 1e-7 * float(np.abs(E).max()))
    res = np.abs(dE_obs - dE_pred)
    size = np.abs(dE_obs) + np.abs(dE_pred)
    informative = size > 2 * floor
    if informative.sum() < MIN_PAIR_FRAMES:
        return out
    cs = 0.5 * (fnorm[i] + fnorm[j]) * np.linalg.norm(d, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(cs > 0, np.maximum(res - floor, 0.0) / cs, 0.0)
    worst = np.full(M, np.inf)
    np.minimum.at(worst, i, r)
    np.minimum.at(worst, j, r)
    return out | {
        "pairs": int(informative.sum()),
        "pair_residual": float(np.median(res[informative] / size[informative])),
        "slope": float(dE_obs @ dE_pred / max(float(dE_pred @ dE_pred), 1e-300)),
        "frame_residual": worst,
    }


def check_energy_forces(R: np.ndarray, E: np.ndarray, F: np.ndarray, source: str) -> None:
    """Energies consistent with forces (see the module docstring for the statistics)."""
    M = len(R)
    if M < 2:
        return
    stats = energy_force_statistics(R, E, F)
    ratio, m = stats["offset"], stats["median_frame"]
    bad = np.flatnonzero(ratio > ENERGY_OFFSET)
    if bad.size:
        raise DatasetError(
            f"{source}: the energies of {frames_text(bad, M)} differ from frame {m}'s by up to "
            f"{ratio[bad].max():.3g} × what the forces allow along the path (limit "
            f"{ENERGY_OFFSET}): energies in other units, or another reference?"
        )
    if "pairs" not in stats:
        return
    if stats["pair_residual"] > PAIR_RESIDUAL:
        raise DatasetError(
            f"{source}: energies do not match the forces: between nearest frames, "
            f"median |ΔE − ΔE_forces| / (|ΔE| + |ΔE_forces|) = {stats['pair_residual']:.2f} "
            f"(limit {PAIR_RESIDUAL}; {stats['pairs']} pairs) and ΔE ≈ {stats['slope']:.3g} "
            "× ΔE_forces (23.06: eV vs kcal/mol, 627.5: Hartree, −1: gradients stored as "
            "forces; near 0: energies shuffled or of other geometries)"
        )
    worst = stats["frame_residual"]
    flagged = np.flatnonzero(np.isfinite(worst) & (worst > FRAME_RESIDUAL))
    if flagged.size:
        log.warning(
            "%s: the energies of %s disagree with every nearest frame by more than %.2g × "
            "the force path integral's scale (up to %.3g): mislabelled frames?",
            source,
            frames_text(flagged, M),
            FRAME_RESIDUAL,
            worst[flagged].max(),
        )


def check_labelled(
    R: np.ndarray, z: np.ndarray, E: np.ndarray | None, F: np.ndarray, source: str
) -> None:
    """All checks of a labelled dataset (Å, kcal/mol): geometries, grids, E against F."""
    check_geometries(R, z, source, labelled=True)
    check_real("F", F, source)
    if E is not None:
        check_real("E", E, source)
        check_energy_forces(R, E, F, source)
