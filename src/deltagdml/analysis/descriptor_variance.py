"""Descriptor variance along a trajectory (paper Fig. 3).

Both descriptors are symmetric N×N matrices D(X):

- ``inverse_distance`` (the kernel's descriptor): D_ab = 1/r_ab in Å⁻¹ for a ≠ b, D_aa = 0.
  The kernel uses the lower triangle only, so its squared descriptor distance is z²/2.
- ``coulomb`` (Rupp et al. 2012, atomic units): D_ab = Z_a Z_b / r_ab with r in bohr,
  D_aa = 0.5 Z_a^2.4, entries in hartree (E_h).

For two frames, ΔD = D(X_t1) − D(X_t2) and the squared Frobenius distance
z² = Σ_ab ΔD_ab² splits exactly into one intra-fragment block per fragment (a and b in
fragment k, diagonal included) plus the inter-fragment term (a and b in different fragments,
both triangles).

Over P random frame pairs (i ≠ j, seeded), σ(ΔD)_ab and σ(ΔD²)_ab are the standard deviations
(ddof = 0) of ΔD_ab and ΔD_ab² over the pairs. The variance ratio is

    σ_inter/σ_intra = mean over inter-fragment entries (a, b) of σ_ab
                      / mean over intra-fragment entries (a, b), a ≠ b, of σ_ab.

The diagonal is excluded (it is constant). The ratio is +inf when every intra-fragment entry
is constant and NaN when no fragment has two atoms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ase.data import chemical_symbols, covalent_radii
from ase.units import Bohr

from deltagdml.data.systems import BOND_SCALE
from deltagdml.errors import ConfigError, DatasetError
from deltagdml.gdml.descriptor import descriptor, pair_indices

ENTRY_KEYS = ("first", "second", "inter")
UNITS = {"inverse_distance": "1/Ang", "coulomb": "E_h"}


def inverse_distance_matrix(R: np.ndarray) -> np.ndarray:
    """D_ab = 1/r_ab (Å⁻¹), zero diagonal, for geometries R (..., N, 3) → (..., N, N)."""
    R = np.asarray(R, dtype=float)
    n = R.shape[-2]
    a, b = pair_indices(n)
    D = np.zeros((*R.shape[:-2], n, n))
    x = descriptor(R)
    D[..., a, b] = x
    D[..., b, a] = x
    return D


def coulomb_matrix(R: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Coulomb matrix in hartree: Z_a Z_b / r_ab (r in bohr), 0.5 Z_a^2.4 on the diagonal."""
    z = np.asarray(z, dtype=float)
    D = inverse_distance_matrix(R) * (Bohr * np.outer(z, z))  # 1/r_bohr = Bohr/r_Å
    idx = np.arange(z.size)
    D[..., idx, idx] = 0.5 * z**2.4
    return D


#: Descriptor matrices of geometries R (M, N, 3) with atomic numbers z, keyed like UNITS.
DESCRIPTORS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "inverse_distance": lambda R, z: inverse_distance_matrix(R),
    "coulomb": coulomb_matrix,
}


def fragment_of_atom(fragments: list[np.ndarray], n_atoms: int) -> np.ndarray:
    """Fragment index of every atom."""
    owner = np.full(n_atoms, -1)
    for k, idx in enumerate(fragments):
        owner[np.asarray(idx, dtype=int)] = k
    if np.any(owner < 0):
        raise DatasetError(f"atoms {np.flatnonzero(owner < 0).tolist()} belong to no fragment")
    return owner


def entry_masks(fragments: list[np.ndarray], n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean N×N masks of intra-fragment off-diagonal entries and of inter-fragment entries."""
    owner = fragment_of_atom(fragments, n_atoms)
    same = owner[:, None] == owner[None, :]
    return same & ~np.eye(n_atoms, dtype=bool), ~same


def frobenius_decomposition(dD: np.ndarray, fragments: list[np.ndarray]) -> dict[str, float]:
    """z² = ||ΔD||_F² and its terms: ``intra_k`` per fragment block, ``inter``, ``total``."""
    sq = np.asarray(dD, dtype=float) ** 2
    owner = fragment_of_atom(fragments, sq.shape[-1])
    out = {}
    for k in range(len(fragments)):
        block = owner == k
        out[f"intra_{k}"] = float(sq[np.ix_(block, block)].sum())
    out["inter"] = float(sq[owner[:, None] != owner[None, :]].sum())
    out["total"] = float(sq.sum())
    return out


def random_frame_pairs(n_frames: int, n_pairs: int, seed: int) -> np.ndarray:
    """``n_pairs`` random frame pairs (i, j), i ≠ j, uniform over ordered pairs; (P, 2)."""
    if n_frames < 2:
        raise DatasetError(f"need at least two frames for frame pairs, got {n_frames}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n_frames, n_pairs)
    j = (i + rng.integers(1, n_frames, n_pairs)) % n_frames
    return np.stack([i, j], axis=1)


def pair_differences(D: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """ΔD = D[i] − D[j] for every pair (i, j): (P, N, N)."""
    return D[pairs[:, 0]] - D[pairs[:, 1]]


def variance_ratio(std: np.ndarray, fragments: list[np.ndarray]) -> tuple[float, float, float]:
    """(mean inter σ, mean intra σ, their ratio) of a per-entry σ map (see module docstring)."""
    intra, inter = entry_masks(fragments, std.shape[-1])
    mean_inter = float(std[inter].mean())
    mean_intra = float(std[intra].mean()) if intra.any() else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(mean_inter) / np.float64(mean_intra))
    return mean_inter, mean_intra, ratio


@dataclass
class Entry:
    """A descriptor entry (atoms a > b) whose time series is shown, with why it was chosen."""

    key: str
    a: int
    b: int
    note: str

    def label(self, z: np.ndarray) -> str:
        return f"{chemical_symbols[z[self.b]]}{self.b}–{chemical_symbols[z[self.a]]}{self.a}"


def validate_entries(spec: dict, fragments: list[np.ndarray], n_atoms: int, name: str) -> None:
    """Check configured entries: ``first``/``second`` inside one fragment, ``inter`` across."""
    where = f"analysis.descriptor_entries.{name}"
    if not isinstance(spec, dict) or set(spec) - set(ENTRY_KEYS):
        raise ConfigError(f"{where}: expected a dict with keys among {ENTRY_KEYS}, got {spec!r}")
    owner = fragment_of_atom(fragments, n_atoms)
    for key, pair in spec.items():
        ok = (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(i, int) and 0 <= i < n_atoms for i in pair)
            and pair[0] != pair[1]
        )
        if not ok:
            raise ConfigError(f"{where}.{key}: expected two different atom indices < {n_atoms}")
        if (owner[pair[0]] == owner[pair[1]]) != (key != "inter"):
            kind = "different fragments" if key == "inter" else "the same fragment"
            raise ConfigError(f"{where}.{key}: atoms {list(pair)} must be in {kind}")


def select_entries(
    R: np.ndarray, z: np.ndarray, fragments: list[np.ndarray], overrides: dict | None = None
) -> list[Entry]:
    """Entries ``first``, ``second`` (intra-fragment) and ``inter`` shown in Fig. 3A.

    Automatic choice from mean distances r̄_ab over the frames: ``first``/``second`` are the
    covalently bonded pairs (r̄ < 1.2 × sum of covalent radii; the closest pair if none is
    bonded) with the shortest r̄ in the first / second fragment with more than one atom. If
    only one fragment has several atoms (e.g. an ion on a molecule), ``second`` is its next
    pair, preferring other elements than ``first``. ``inter`` is the inter-fragment pair with
    the smallest r̄. ``overrides`` maps keys to atom pairs (see :func:`validate_entries`).
    """
    R = np.asarray(R, dtype=float)
    n = R.shape[1]
    owner = fragment_of_atom(fragments, n)
    a, b = pair_indices(n)
    r_mean = (1.0 / descriptor(R)).mean(axis=0)
    bonded = r_mean < BOND_SCALE * (covalent_radii[z[a]] + covalent_radii[z[b]])
    order = np.argsort(r_mean, kind="stable")

    def ranked(k: int) -> list[int]:
        inside = [p for p in order if owner[a[p]] == k and owner[b[p]] == k]
        return [p for p in inside if bonded[p]] or inside

    def entry(key: str, p: int, note: str) -> Entry:
        kind = "bonded pair" if bonded[p] else "closest pair (no bond)"
        return Entry(key, int(a[p]), int(b[p]), note.format(kind=kind))

    multi = [k for k, f in enumerate(fragments) if len(f) > 1]
    chosen = {}
    if multi:
        k = multi[0]
        first = ranked(k)
        chosen["first"] = entry("first", first[0], f"shortest {{kind}} in fragment {k}")
        if len(multi) > 1:
            k2 = multi[1]
            chosen["second"] = entry("second", ranked(k2)[0], f"shortest {{kind}} in fragment {k2}")
        elif len(first) > 1:
            elements = frozenset((z[a[first[0]]], z[b[first[0]]]))
            other = [p for p in first[1:] if frozenset((z[a[p]], z[b[p]])) != elements]
            chosen["second"] = entry(
                "second",
                (other or first[1:])[0],
                f"only fragment {k} has several atoms: its next {{kind}}"
                + (" of other elements" if other else ""),
            )
    inter = [p for p in order if owner[a[p]] != owner[b[p]]]
    chosen["inter"] = entry("inter", inter[0], "closest inter-fragment pair")
    if overrides:
        validate_entries(overrides, fragments, n, "overrides")
        for key, (i, j) in overrides.items():
            chosen[key] = Entry(key, max(i, j), min(i, j), "configured")
    return [chosen[key] for key in ENTRY_KEYS if key in chosen]


@dataclass
class DescriptorVariance:
    """Fig. 3 numbers of one descriptor; N×N maps in the atom order of the input."""

    name: str
    series: np.ndarray  # (M, n_entries) values of the selected entries
    dD2: np.ndarray  # ΔD² between frames t1 and t2
    decomposition: dict[str, float]  # z² terms between t1 and t2
    std_dD: np.ndarray  # per-entry σ(ΔD) over random frame pairs
    std_dD2: np.ndarray  # per-entry σ(ΔD²) over random frame pairs
    inter_fraction: float  # mean over random pairs of the inter-fragment share of z²

    @property
    def unit(self) -> str:
        return UNITS[self.name]


def descriptor_variance(
    D: np.ndarray,
    name: str,
    fragments: list[np.ndarray],
    entries: list[Entry],
    frames: tuple[int, int],
    pairs: np.ndarray,
) -> DescriptorVariance:
    """Fig. 3 numbers of descriptor matrices D (M, N, N) for given frames and frame pairs."""
    t1, t2 = frames
    if not (0 <= t1 < len(D) and 0 <= t2 < len(D)):
        raise ConfigError(f"frames {list(frames)} out of range for {len(D)} frames")
    dD = D[t1] - D[t2]
    diffs = pair_differences(D, pairs)
    _, inter = entry_masks(fragments, D.shape[-1])
    sq = diffs**2
    total = sq.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = sq[:, inter].sum(axis=1) / total
    return DescriptorVariance(
        name=name,
        series=np.stack([D[:, e.a, e.b] for e in entries], axis=1),
        dD2=dD**2,
        decomposition=frobenius_decomposition(dD, fragments),
        std_dD=diffs.std(axis=0),
        std_dD2=sq.std(axis=0),
        inter_fraction=float(np.nanmean(shares)),
    )


def summary_rows(
    results: list[DescriptorVariance],
    fragments: list[np.ndarray],
    entries: list[Entry],
    z: np.ndarray,
    frames: tuple[int, int],
    n_pairs: int,
) -> pd.DataFrame:
    """One CSV row per descriptor: z² terms, mean σ of intra/inter entries, ratios."""
    rows = []
    for res in results:
        row: dict[str, object] = {"descriptor": res.name, "unit": res.unit}
        row.update(t1=frames[0], t2=frames[1])
        row.update({f"z2_{k}": v for k, v in res.decomposition.items()})
        row["z2_inter_share"] = res.decomposition["inter"] / res.decomposition["total"]
        row["n_pairs"] = n_pairs
        row["z2_inter_share_mean_pairs"] = res.inter_fraction
        for what, std in (("dD", res.std_dD), ("dD2", res.std_dD2)):
            mean_inter, mean_intra, ratio = variance_ratio(std, fragments)
            row[f"mean_std_{what}_intra"] = mean_intra
            row[f"mean_std_{what}_inter"] = mean_inter
            row[f"ratio_std_{what}"] = ratio
        for e, series in zip(entries, res.series.T, strict=True):
            row[f"entry_{e.key}"] = e.label(z)
            row[f"entry_{e.key}_note"] = e.note
            row[f"std_time_{e.key}"] = float(series.std())
        rows.append(row)
    return pd.DataFrame(rows)
