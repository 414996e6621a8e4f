"""Noncovalent complexes: starting structure, fragment partition, charges and spin.

A system is configured by a dict (e.g. one entry of the workflow config)::

    structure: S22 name | path (relative to base_dir) | ase.Atoms | {"base": ..., "keep": [...],
               "add_atom": {"symbol": "Na", "on_ring_axis_of": [...], "distance": 2.4}}
    fragments: [[0, 1, ...], [12, 13, 14]] | ["0-11", "12-14"] | "connectivity"
    charges: [0, 0]          # per fragment, default 0
    multiplicities: [1, 1]   # per fragment, default 1
    charge: 0                # complex, default sum of fragment charges
    multiplicity: 1          # complex, default 1

Other keys are ignored (they belong to other parts of the workflow config).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms
from ase.collections import s22
from ase.data import atomic_numbers
from ase.neighborlist import NeighborList, natural_cutoffs
from scipy.sparse.csgraph import connected_components

from deltagdml.errors import ConfigError

#: Structure files shipped with the package (provenance in its README.md).
STRUCTURES = Path(__file__).parent / "structures"
#: Built-in systems. Index lists were read off the S22 geometries (benzene atoms come first).
DEFAULT_SYSTEMS: dict[str, dict[str, Any]] = {
    "methane_dimer": {
        "label": "methane dimer",
        "structure": "Methane_dimer",
        "fragments": [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]],
    },
    "benzene_dimer": {
        "label": "benzene dimer",
        "structure": "Benzene_dimer_parallel_displaced",
        "fragments": [list(range(12)), list(range(12, 24))],
    },
    "water_benzene": {
        "label": "water–benzene",
        "structure": "Benzene-water_complex",
        "fragments": [list(range(12)), [12, 13, 14]],
    },
    "na_benzene": {
        "label": "Na⁺–benzene",
        "structure": {
            "base": "Benzene-water_complex",
            "keep": list(range(12)),
            "add_atom": {"symbol": "Na", "on_ring_axis_of": list(range(6)), "distance": 2.4},
        },
        "fragments": [list(range(12)), [12]],
        "charges": [0, 1],
    },
    "c60_buckycatcher": {
        "label": "C₆₀@buckycatcher",
        "structure": str(STRUCTURES / "c60_buckycatcher.xyz"),
        "fragments": ["0-59", "60-147"],
    },
}


#: Bond criterion of :func:`connectivity_fragments`: d < BOND_SCALE * (sum of covalent radii).
BOND_SCALE = 1.2


@dataclass
class System:
    """A complex of ``len(fragments)`` fragments; ``fragments[k]`` holds atom indices."""

    name: str
    atoms: Atoms
    fragments: list[np.ndarray]
    fragment_charges: list[int]
    fragment_multiplicities: list[int]
    charge: int
    multiplicity: int

    @property
    def z(self) -> np.ndarray:
        return self.atoms.numbers.copy()

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)

    @property
    def n_fragments(self) -> int:
        return len(self.fragments)


def ring_axis_point(positions: np.ndarray, ring_idx: list[int], distance: float) -> np.ndarray:
    """Point at ``distance`` Å from the ring centroid along the ring normal.

    The normal is that of the least-squares plane through the ring atoms, oriented
    like ``(r[i0] - c) x (r[i1] - c)``; a negative distance selects the other face.
    """
    ring = np.asarray(positions, dtype=float)[np.asarray(ring_idx, dtype=int)]
    if len(ring) < 3:
        raise ConfigError(f"ring axis needs at least 3 ring atoms, got {len(ring)}")
    centroid = ring.mean(axis=0)
    normal = np.linalg.svd(ring - centroid)[2][2]
    if np.dot(normal, np.cross(ring[0] - centroid, ring[1] - centroid)) < 0:
        normal = -normal
    return centroid + distance * normal


def _read_structure(spec: Any, base_dir: Path, where: str) -> Atoms:
    if isinstance(spec, Atoms):
        return Atoms(spec.numbers, positions=spec.positions)
    if isinstance(spec, dict):
        unknown = set(spec) - {"base", "keep", "add_atom"}
        if unknown or "base" not in spec:
            raise ConfigError(
                f"{where}: a structure dict needs 'base' and may hold 'keep', 'add_atom'; "
                f"got keys {sorted(spec)}"
            )
        atoms = _read_structure(spec["base"], base_dir, where)
        if "keep" in spec:
            keep = index_list(spec["keep"], len(atoms), f"{where}.keep")
            atoms = atoms[keep]
        if "add_atom" in spec:
            atoms = _add_atom(atoms, spec["add_atom"], f"{where}.add_atom")
        return atoms
    if not isinstance(spec, str):
        raise ConfigError(f"{where}: expected an S22 name, a file path or a dict, got {spec!r}")
    if spec in s22.names:
        atoms = s22[spec].copy()
        atoms.info.clear()
        return atoms
    path = base_dir / spec
    if not path.is_file():
        raise ConfigError(
            f"{where}: {spec!r} is neither an S22 name nor an existing file ({path} not found)"
        )
    try:
        return ase.io.read(path, index=0)
    except Exception as exc:  # ase.io raises many types for unreadable files
        raise ConfigError(f"{where}: cannot read structure file {path}: {exc}") from exc


def _add_atom(atoms: Atoms, spec: dict, where: str) -> Atoms:
    try:
        symbol = spec["symbol"]
        ring = index_list(spec["on_ring_axis_of"], len(atoms), f"{where}.on_ring_axis_of")
        distance = float(spec["distance"])
    except KeyError as exc:
        raise ConfigError(
            f"{where}: missing key {exc} (need symbol, on_ring_axis_of, distance)"
        ) from None
    if symbol not in atomic_numbers:
        raise ConfigError(f"{where}: unknown element symbol {symbol!r}")
    out = atoms.copy()
    out += Atoms(symbol, positions=[ring_axis_point(atoms.positions, ring, distance)])
    return out


def index_list(spec: Any, n_atoms: int, where: str) -> np.ndarray:
    """Indices from a list of ints or a string like ``"0-11,14"`` (inclusive ranges)."""
    if isinstance(spec, str):
        items: list[Any] = []
        for part in spec.split(","):
            lo, sep, hi = part.strip().partition("-")
            try:
                items.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
            except ValueError:
                raise ConfigError(f"{where}: cannot parse index range {spec!r}") from None
    else:
        items = list(spec) if isinstance(spec, list | tuple | np.ndarray) else [spec]
    if not items or not all(
        isinstance(i, int | np.integer) and not isinstance(i, bool) for i in items
    ):
        raise ConfigError(f"{where}: expected a non-empty list of integer indices, got {spec!r}")
    idx = np.asarray(items, dtype=int)
    bad = idx[(idx < 0) | (idx >= n_atoms)]
    if bad.size:
        raise ConfigError(f"{where}: indices {bad.tolist()} out of range for {n_atoms} atoms")
    return idx


def bonded_pairs(atoms: Atoms) -> np.ndarray:
    """Bonded atom pairs (n, 2), each once: closer than BOND_SCALE (r_i + r_j), r the
    covalent radii."""
    nl = NeighborList(natural_cutoffs(atoms, mult=BOND_SCALE), skin=0.0, self_interaction=False)
    nl.update(atoms)
    pairs = [(i, j) for i in range(len(atoms)) for j in nl.get_neighbors(i)[0]]
    return np.array(pairs, dtype=int).reshape(-1, 2)


def connectivity_fragments(atoms: Atoms) -> list[np.ndarray]:
    """Covalently bonded components, ordered by their first atom.

    Atoms i, j are bonded if closer than 1.2 (r_i + r_j), r the covalent radii. Ionic
    contacts (e.g. a cation over an aromatic ring) may count as bonds: give such fragments
    explicitly.
    """
    cutoffs = natural_cutoffs(atoms, mult=BOND_SCALE)
    nl = NeighborList(cutoffs, skin=0.0, self_interaction=False, bothways=True)
    nl.update(atoms)
    _, labels = connected_components(nl.get_connectivity_matrix(sparse=True), directed=False)
    order = []
    for label in labels:
        if label not in order:
            order.append(label)
    return [np.flatnonzero(labels == label) for label in order]


def _per_fragment(cfg: dict, key: str, n: int, default: int, where: str) -> list[int]:
    values = cfg.get(key, [default] * n)
    if not isinstance(values, list | tuple) or len(values) != n:
        raise ConfigError(
            f"{where}: '{key}' must list one integer per fragment ({n}), got {values!r}"
        )
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{where}: '{key}' must hold integers, got {values!r}")
    return [int(v) for v in values]


def _check_spin(z: np.ndarray, charge: int, multiplicity: int, what: str) -> None:
    n_electrons = int(z.sum()) - charge
    if multiplicity < 1 or n_electrons < 0 or (n_electrons - (multiplicity - 1)) % 2:
        raise ConfigError(
            f"{what}: multiplicity {multiplicity} is impossible with {n_electrons} electrons "
            f"(charge {charge})"
        )


def validate_fragments(fragments: list[np.ndarray], n_atoms: int, where: str) -> None:
    """Require >= 2 fragments that are disjoint and together cover every atom once."""
    if len(fragments) < 2:
        raise ConfigError(f"{where}: need at least 2 fragments, got {len(fragments)}")
    counts = np.bincount(np.concatenate(fragments), minlength=n_atoms)
    if np.any(counts > 1):
        raise ConfigError(
            f"{where}: fragments overlap: atoms {np.flatnonzero(counts > 1).tolist()} "
            "belong to more than one fragment"
        )
    if np.any(counts == 0):
        raise ConfigError(
            f"{where}: atoms {np.flatnonzero(counts == 0).tolist()} belong to no fragment"
        )


def system_from_config(name: str, cfg: dict, base_dir: str | Path = ".") -> System:
    """Build and validate a :class:`System` from its config dict (see module docstring)."""
    where = f"system '{name}'"
    if not isinstance(cfg, dict) or "structure" not in cfg or "fragments" not in cfg:
        raise ConfigError(f"{where}: config must be a dict with 'structure' and 'fragments'")
    atoms = _read_structure(cfg["structure"], Path(base_dir), f"{where}.structure")
    n_atoms = len(atoms)
    spec = cfg["fragments"]
    if spec == "connectivity":
        fragments = connectivity_fragments(atoms)
    elif isinstance(spec, list | tuple):
        fragments = [index_list(f, n_atoms, f"{where}.fragments[{k}]") for k, f in enumerate(spec)]
    else:
        raise ConfigError(
            f"{where}: 'fragments' must be a list of index lists or 'connectivity', got {spec!r}"
        )
    validate_fragments(fragments, n_atoms, where)
    n = len(fragments)
    charges = _per_fragment(cfg, "charges", n, 0, where)
    mults = _per_fragment(cfg, "multiplicities", n, 1, where)
    charge = cfg.get("charge", sum(charges))
    multiplicity = cfg.get("multiplicity", 1)
    for key, value in (("charge", charge), ("multiplicity", multiplicity)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
    if charge != sum(charges):
        raise ConfigError(
            f"{where}: complex charge {charge} differs from the sum of fragment charges "
            f"{charges} = {sum(charges)}"
        )
    for k, (idx, q, m) in enumerate(zip(fragments, charges, mults, strict=True)):
        _check_spin(atoms.numbers[idx], q, m, f"{where} fragment {k}")
    _check_spin(atoms.numbers, charge, multiplicity, where)
    return System(name, atoms, fragments, charges, mults, int(charge), int(multiplicity))


def fragment_atoms(system: System, k: int) -> Atoms:
    """Fragment ``k`` alone, with ``info`` keys fragment, charge and multiplicity."""
    atoms = system.atoms[system.fragments[k]]
    atoms.info.update(
        fragment=k,
        charge=system.fragment_charges[k],
        multiplicity=system.fragment_multiplicities[k],
    )
    return atoms


def model_parts(system: System) -> list[str]:
    """Models to train: 'full', one 'fragment_k' per multi-atom fragment, 'binding'."""
    parts = ["full"]
    parts += [f"fragment_{k}" for k, idx in enumerate(system.fragments) if len(idx) > 1]
    return parts + ["binding"]
