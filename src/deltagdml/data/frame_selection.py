"""Which candidate frames of the sampling replicas get reference labels.

Each replica (temperature) gets an equal share of the frames. ``time``: frames evenly
spaced in time; with as many candidates as frames to keep, every candidate.
``cv``: frames that cover the collective variables evenly. The CV space (each variable
scaled to [0, 1] over the replica's candidates) is cut into a grid of about ``n`` cells; rounds
over the occupied cells take one random remaining frame from each, so sparsely visited
regions (the repulsive wall, a wide-open pincer) get as many frames as the well.
"""

from __future__ import annotations

import numpy as np

from deltagdml.errors import ConfigError

METHODS = ("time", "cv")


def select_evenly_in_time(n_candidates: int, n: int) -> np.ndarray:
    """``n`` distinct indices evenly spaced over ``range(n_candidates)`` (sorted)."""
    _check_sizes(n_candidates, n)
    if n == 1:
        return np.array([0])
    return np.floor(np.linspace(0, n_candidates - 1, n) + 0.5).astype(int)


def select_by_cv(cvs: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` distinct indices (sorted) of rows of ``cvs`` (M, d) that cover the CVs evenly."""
    cvs = np.asarray(cvs, dtype=float)
    if cvs.ndim == 1:
        cvs = cvs[:, None]
    if cvs.ndim != 2 or not np.all(np.isfinite(cvs)):
        raise ConfigError(f"frame selection: need finite CVs of shape (M, d), got {cvs.shape}")
    _check_sizes(len(cvs), n)
    lo, span = cvs.min(axis=0), np.ptp(cvs, axis=0)
    scaled = (cvs - lo) / np.where(span > 0, span, 1.0)
    bins = max(1, int(np.ceil(n ** (1.0 / cvs.shape[1]))))
    cell_of = np.ravel_multi_index(
        tuple(np.minimum((scaled * bins).astype(int), bins - 1).T), (bins,) * cvs.shape[1]
    )
    rng = np.random.default_rng(seed)
    members = [rng.permutation(np.flatnonzero(cell_of == c)) for c in np.unique(cell_of)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < n:
        layer = [m[depth] for m in members if depth < len(m)]
        take = n - len(chosen)
        chosen += layer if len(layer) <= take else list(rng.choice(layer, take, replace=False))
        depth += 1
    return np.sort(np.array(chosen, dtype=int))


def select_frames(
    cvs: np.ndarray, n: int, method: str, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """Indices (sorted) of the ``n`` candidate frames to label; see the module docstring.

    With ``groups`` (e.g. the replica of every candidate) each group gets an equal share
    of the ``n`` frames (the first groups one more if ``n`` does not divide), chosen by
    ``method`` within the group, so that every temperature is represented.
    """
    if method not in METHODS:
        raise ConfigError(f"sampling.selection must be one of {METHODS}, got {method!r}")
    if groups is None:
        groups = np.zeros(len(cvs), dtype=int)
    labels = np.unique(groups)
    _check_sizes(len(cvs), n)
    shares = np.full(labels.size, n // labels.size) + (np.arange(labels.size) < n % labels.size)
    chosen = []
    for k, (label, share) in enumerate(zip(labels, shares, strict=True)):
        members = np.flatnonzero(groups == label)
        if share > members.size:
            raise ConfigError(
                f"frame selection: group {label} has {members.size} candidates for its "
                f"share of {share} frames"
            )
        if method == "time":
            local = select_evenly_in_time(members.size, share)
        else:
            local = select_by_cv(cvs[members], share, seed + k)
        chosen.append(members[local])
    return np.sort(np.concatenate(chosen))


def coverage(values: np.ndarray, reference: np.ndarray, bins: int = 20) -> float:
    """Fraction of the occupied histogram bins of ``reference`` (over its range, (M, d)
    or (M,)) that ``values`` also occupy: 1 when every visited region is represented."""
    ref = np.asarray(reference, dtype=float).reshape(len(reference), -1)
    val = np.asarray(values, dtype=float).reshape(len(values), -1)
    edges = [np.linspace(c.min(), c.max(), bins + 1) for c in ref.T]
    h_ref = np.histogramdd(ref, bins=edges)[0] > 0
    h_val = np.histogramdd(val, bins=edges)[0] > 0
    return float((h_ref & h_val).sum() / h_ref.sum())


def _check_sizes(n_candidates: int, n: int) -> None:
    if not 1 <= n <= n_candidates:
        raise ConfigError(
            f"frame selection: cannot keep {n} frames out of {n_candidates} candidates"
        )
