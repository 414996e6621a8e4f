"""Collective variables of a trajectory (Å) and the guest's rotational diffusion (rad²).

Trajectories are arrays R of shape (M, N, 3) in Å.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from deltagdml.data.md import com_distances
from deltagdml.data.systems import System, index_list
from deltagdml.errors import ConfigError
from deltagdml.settings import TrajectoryAnalysisSettings

CV = Callable[[np.ndarray], np.ndarray]


def com_distance(R: np.ndarray, masses: np.ndarray, fragments: list[np.ndarray]) -> np.ndarray:
    """R_CM (M,): largest distance of a fragment's COM from that of fragment 0."""
    return com_distances(R, masses, fragments).max(axis=1)


def min_distance(R: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest distance (M,) between an atom of group ``a`` and one of group ``b``."""
    out = np.empty(len(R))
    for start in range(0, len(R), 256):
        d = R[start : start + 256, a, None, :] - R[start : start + 256, None, b, :]
        out[start : start + 256] = np.einsum("mijk,mijk->mij", d, d).min(axis=(1, 2))
    return np.sqrt(out)


def centroid_distance(R: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (M,) between the centroids of atom groups ``a`` and ``b``."""
    return np.linalg.norm(R[:, a].mean(axis=1) - R[:, b].mean(axis=1), axis=1)


def pincer_groups(positions: np.ndarray, z: np.ndarray, host: np.ndarray) -> list[np.ndarray]:
    """The two pincer halves of a clamp-shaped host, found on one geometry.

    The host's carbon atoms are split by the plane through their centroid normal to their
    longest principal axis; for the buckycatcher each half is one corannulene pincer with
    its half of the tether (30 carbon atoms each).
    """
    carbons = host[z[host] == 6]
    if carbons.size < 4:
        raise ConfigError("cv2 'pincer' needs a host fragment with at least 4 carbon atoms")
    x = positions[carbons] - positions[carbons].mean(axis=0)
    side = x @ np.linalg.svd(x, full_matrices=False)[2][0]
    return [carbons[side < 0], carbons[side >= 0]]


def choose_guest(system: System, setting: int | str) -> int | None:
    """The fragment whose orientation is followed (None if no fragment has ≥ 3 atoms).

    ``"auto"`` picks the smallest fragment with at least 3 atoms (ties: the first).
    """
    sizes = [len(f) for f in system.fragments]
    if setting != "auto":
        k = int(setting)
        if not 0 <= k < len(sizes) or sizes[k] < 3:
            raise ConfigError(f"guest_fragment {setting!r}: need a fragment with at least 3 atoms")
        return k
    candidates = [k for k, n in enumerate(sizes) if n >= 3]
    return min(candidates, key=lambda k: sizes[k]) if candidates else None


def second_cv(
    spec: Mapping[str, Any], system: System, guest: int, start: np.ndarray
) -> tuple[str, CV]:
    """Axis label and function of the second collective variable (Å).

    ``spec["kind"]``: ``min_distance`` (d_min, closest guest–host atom pair), ``atoms``
    (distance of ``atoms: [i, j]``), ``centroids`` (d_AB, distance of the centroids of
    ``groups: [a, b]``) or ``pincer`` (opening R_p of a clamp-shaped host, see
    :func:`pincer_groups`).
    """
    n = system.n_atoms
    g = system.fragments[guest]
    host = np.setdiff1d(np.arange(n), g)
    kind = spec["kind"]
    if kind == "min_distance":
        return "$d_{min}$ (Å)", lambda R: min_distance(R, g, host)
    if kind == "atoms":
        pair = index_list(spec.get("atoms"), n, "dynamics.analysis.cv2.atoms")
        if pair.size != 2:
            raise ConfigError("dynamics.analysis.cv2.atoms must hold two atom indices")
        i, j = pair
        return f"$d_{{{i},{j}}}$ (Å)", lambda R: np.linalg.norm(R[:, i] - R[:, j], axis=1)
    if kind == "centroids":
        groups = spec.get("groups") or []
        if len(groups) != 2:
            raise ConfigError("dynamics.analysis.cv2.groups must hold two atom lists")
        a, b = (index_list(x, n, "dynamics.analysis.cv2.groups") for x in groups)
        return "$d_{AB}$ (Å)", lambda R: centroid_distance(R, a, b)
    a, b = pincer_groups(start, system.z, host)
    return "$R_p$ (Å)", lambda R: centroid_distance(R, a, b)


#: Column names (Å) of the second collective variable in tables, by ``cv2.kind``.
CV2_COLUMNS = {
    "min_distance": "d_min_A",
    "atoms": "d_atoms_A",
    "centroids": "d_AB_A",
    "pincer": "R_p_A",
}


def cv_pair(
    analysis: TrajectoryAnalysisSettings, system: System, start: np.ndarray
) -> tuple[list[str], CV]:
    """The two collective variables of the FES and of frame selection: R_CM and the
    configured second variable. Returns their axis labels and a function R → (M, 2) Å."""
    guest = choose_guest(system, analysis.guest_fragment)
    if guest is None:
        guest = int(np.argmin([len(f) for f in system.fragments]))
    y_label, cv2 = second_cv(analysis.cv2, system, guest, start)
    masses = system.atoms.get_masses()

    def both(R: np.ndarray) -> np.ndarray:
        return np.stack([com_distance(R, masses, system.fragments), cv2(R)], axis=1)

    return ["$R_{CM}$ (Å)", y_label], both


def kabsch(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Rotations U (M, 3, 3) minimising Σ_i |U p_i − q_i|² for centred P, Q (M, n, 3)."""
    H = np.einsum("mni,mnj->mij", P, Q)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("mij,mjk->mik", U, Vt)))
    D = np.zeros_like(H)
    D[:, 0, 0] = D[:, 1, 1] = 1.0
    D[:, 2, 2] = d
    return np.einsum("mji,mjk,mlk->mil", Vt, D, U)


def _centred(X: np.ndarray) -> np.ndarray:
    return X - X.mean(axis=1, keepdims=True)


def guest_orientations(R: np.ndarray, guest: np.ndarray, host: np.ndarray) -> np.ndarray:
    """Rotation (M, 3, 3) of the guest since frame 0, seen from the host's frame.

    Each frame is first rotated so that the host best matches its frame-0 orientation
    (skipped when the host has fewer than 3 atoms), which removes the tumbling of the
    whole complex; the guest's rotation is then its Kabsch rotation from frame 0.
    """
    G = _centred(R[:, guest])
    if host.size >= 3:
        H = _centred(R[:, host])
        A = kabsch(H, np.broadcast_to(H[0], H.shape))
        G = np.einsum("mij,mnj->mni", A, G)
    return kabsch(np.broadcast_to(G[0], G.shape), G)


def rotation_angles(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Angles (rad) of the rotations V Uᵀ, from their traces."""
    cos = (np.einsum("mij,mij->m", U, V) - 1.0) / 2.0
    return np.arccos(np.clip(cos, -1.0, 1.0))


def msad(U: np.ndarray, max_lag: int) -> np.ndarray:
    """MSAD(τ) = ⟨θ(t, t+τ)²⟩_t (rad²) for lags τ = 0 … max_lag frames.

    θ is the angle of the rotation between orientations t and t+τ, so it is at most π:
    the MSAD saturates once the guest's orientation is randomised.
    """
    max_lag = min(max_lag, len(U) - 1)
    out = np.zeros(max_lag + 1)
    for k in range(1, max_lag + 1):
        out[k] = np.mean(rotation_angles(U[:-k], U[k:]) ** 2)
    return out
