"""Free-energy surfaces F = −kT ln P over two collective variables (kcal/mol)."""

from __future__ import annotations

import numpy as np
from ase import units
from scipy.ndimage import gaussian_filter

from deltagdml.units import KCAL_MOL_PER_EV


def kt_kcal_mol(temperature_K: float) -> float:
    """Thermal energy kT in kcal/mol."""
    return units.kB * temperature_K * KCAL_MOL_PER_EV


def free_energy_surface(
    x: np.ndarray,
    y: np.ndarray,
    temperature_K: float,
    bins: int,
    ranges: tuple[tuple[float, float], tuple[float, float]],
    smoothing_bins: float = 0.0,
) -> np.ndarray:
    """F (bins, bins) in kcal/mol from a 2-D histogram, shifted so that min F = 0.

    With ``smoothing_bins`` > 0 the counts are first convolved with a Gaussian of that width
    (in bins), and bins farther than about two widths from every sample (smoothed count
    below that of one sample two widths away) count as empty. Empty bins are NaN; samples
    outside ``ranges`` are left out. ``F[i, j]`` belongs to x bin i and y bin j.
    """
    H, _, _ = np.histogram2d(x, y, bins=bins, range=ranges)
    floor = 0.0
    if smoothing_bins > 0:
        H = gaussian_filter(H, smoothing_bins, mode="constant")
        floor = np.exp(-2.0) / (2.0 * np.pi * smoothing_bins**2)
    empty = H <= floor
    with np.errstate(divide="ignore"):
        F = -kt_kcal_mol(temperature_K) * np.log(H / max(H.sum(), 1e-300))
    F[empty] = np.nan
    if np.isfinite(F).any():
        F -= np.nanmin(F)
    return F


def common_ranges(
    xs: list[np.ndarray], ys: list[np.ndarray], pad: float = 0.05
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Shared histogram ranges: the union of each run's 0.5–99.5 % quantiles, padded.

    Quantiles keep a run's few outlying frames from stretching every panel; taking them per
    run keeps a short or hot run's basin whole (pooled quantiles cut it off at the edges).
    """
    out = []
    for values in (xs, ys):
        bounds = [
            np.quantile(v, [0.005, 0.995]) for v in (u[np.isfinite(u)] for u in values) if v.size
        ]
        lo, hi = (min(b[0] for b in bounds), max(b[1] for b in bounds)) if bounds else (0.0, 1.0)
        width = max(hi - lo, 1e-3)
        out.append((float(lo - pad * width), float(hi + pad * width)))
    return out[0], out[1]
