"""Reference labels of a complex and of its isolated fragments, in kcal/mol and Å.

A labels dict holds per frame ``R`` (M, N, 3), ``frame_index`` (M,), optionally the
complex ``E`` (M,) / ``F`` (M, N, 3), and optionally for every fragment k ``E_frag_k``
(M,) / ``F_frag_k`` (M, n_k, 3); static keys are ``z`` (N,), ``n_fragments`` and
``frag_idx_k`` (atom indices of fragment k). A single-atom fragment (an ion) has no
geometry dependence: its energy is computed once for the bare atom, its force is zero.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from deltagdml.atomic_io import save_npz_atomic
from deltagdml.data.calculators import make_calculator
from deltagdml.data.systems import System
from deltagdml.errors import ConfigError, DatasetError
from deltagdml.npz_io import read_npz
from deltagdml.settings import CalculatorSettings
from deltagdml.units import KCAL_MOL_PER_EV

Progress = Callable[[str], None]


class LabellingError(RuntimeError):
    """A reference calculation failed (e.g. SCF not converged); names system and frame."""


def _frag_keys(n: int) -> list[str]:
    return [f"{p}_frag_{k}" for k in range(n) for p in ("E", "F")]


def _per_frame_keys(labels: dict) -> list[str]:
    n = int(labels["n_fragments"])
    keys = ["R", "frame_index", "E", "F", *_frag_keys(n)]
    return [key for key in keys if key in labels]


def geometry_labels(
    system: System, R: np.ndarray, frame_indices: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The label keys that describe geometries and fragments, without energies/forces."""
    R = np.asarray(R, dtype=float)
    if R.ndim != 3 or R.shape[1:] != (system.n_atoms, 3) or R.shape[0] == 0:
        raise DatasetError(
            f"system '{system.name}': R must have shape (M >= 1, {system.n_atoms}, 3), "
            f"got {R.shape}"
        )
    idx = np.arange(len(R)) if frame_indices is None else np.asarray(frame_indices, dtype=int)
    if idx.shape != (len(R),):
        raise DatasetError(f"frame_indices has shape {idx.shape}, expected ({len(R)},)")
    labels = {"R": R, "z": system.z, "frame_index": idx, "n_fragments": system.n_fragments}
    labels.update({f"frag_idx_{k}": f for k, f in enumerate(system.fragments)})
    return labels


def _single_point(calc: BaseCalculator, atoms: Atoms, what: str) -> tuple[float, np.ndarray]:
    try:
        energy = calc.get_potential_energy(atoms)
        forces = calc.get_forces(atoms)
    except Exception as exc:  # re-raised with context: any calculator failure is fatal
        raise LabellingError(f"{what}: calculation failed: {exc}") from exc
    if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
        raise LabellingError(f"{what}: calculator returned NaN or inf")
    return energy * KCAL_MOL_PER_EV, forces * KCAL_MOL_PER_EV


def _label(
    system: System,
    R: np.ndarray,
    calculator: CalculatorSettings | None,
    progress: Progress | None,
    frame_indices: np.ndarray | None,
    with_complex: bool,
) -> dict[str, np.ndarray]:
    labels = geometry_labels(system, R, frame_indices)
    R, idx = labels["R"], labels["frame_index"]
    report = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    parts = []  # (key suffix, atom indices, charge, multiplicity, description)
    if with_complex:
        parts.append(("", np.arange(system.n_atoms), system.charge, system.multiplicity, "complex"))
    for k, frag in enumerate(system.fragments):
        q, m = system.fragment_charges[k], system.fragment_multiplicities[k]
        if len(frag) > 1:
            parts.append((f"_frag_{k}", frag, q, m, f"fragment {k}"))
            continue
        atom = Atoms(numbers=system.atoms.numbers[frag], positions=np.zeros((1, 3)))
        what = f"system '{system.name}' fragment {k} (single atom, charge {q})"
        energy, _ = _single_point(make_calculator(calculator, q, m), atom, what)
        labels[f"E_frag_{k}"] = np.full(len(R), energy)
        labels[f"F_frag_{k}"] = np.zeros((len(R), 1, 3))
    runs = []
    for prefix, atom_idx, q, m, desc in parts:
        atoms = Atoms(numbers=system.atoms.numbers[atom_idx], positions=R[0, atom_idx])
        runs.append((prefix, atom_idx, make_calculator(calculator, q, m), atoms, desc))
        labels[f"E{prefix}"] = np.empty(len(R))
        labels[f"F{prefix}"] = np.empty((len(R), len(atom_idx), 3))
    every = max(1, len(R) // 10)
    for i, pos in enumerate(R):
        for prefix, atom_idx, calc, atoms, desc in runs:
            atoms.positions = pos[atom_idx]
            what = f"system '{system.name}' {desc}, frame {idx[i]}"
            labels[f"E{prefix}"][i], labels[f"F{prefix}"][i] = _single_point(calc, atoms, what)
        if (i + 1) % every == 0 or i + 1 == len(R):
            report(f"{system.name}: labelled {i + 1}/{len(R)} frames")
    return labels


def label_frames(
    system: System,
    R: np.ndarray,
    calculator: CalculatorSettings | None,
    progress: Progress | None = None,
    frame_indices: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Energies/forces of the complex and of every isolated fragment at geometries ``R``.

    One calculator per (complex, fragment) is created and reused across frames.
    ``frame_indices`` (default ``arange(M)``) are the global frame numbers of a chunk.
    """
    return _label(system, R, calculator, progress, frame_indices, with_complex=True)


def label_fragments(
    system: System,
    R: np.ndarray,
    calculator: CalculatorSettings | None,
    progress: Progress | None = None,
    frame_indices: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Like :func:`label_frames` but only the isolated fragments (complex labels given)."""
    return _label(system, R, calculator, progress, frame_indices, with_complex=False)


def chunk_indices(n_frames: int, n_chunks: int) -> list[np.ndarray]:
    """Split ``range(n_frames)`` into ``n_chunks`` contiguous, nearly equal index arrays."""
    if not 1 <= n_chunks <= n_frames:
        raise ConfigError(f"n_chunks must be between 1 and n_frames={n_frames}, got {n_chunks}")
    return np.array_split(np.arange(n_frames), n_chunks)


def validate_labels(labels: dict, system: System | None = None, source: str = "labels") -> None:
    """Check keys, shapes, finiteness and (if given) agreement with ``system``."""
    for key in ("R", "z", "frame_index", "n_fragments"):
        if key not in labels:
            raise DatasetError(f"{source}: missing key '{key}'")
    R, z = np.asarray(labels["R"]), np.asarray(labels["z"])
    n = int(labels["n_fragments"])
    if R.ndim != 3 or R.shape[1:] != (len(z), 3) or not np.issubdtype(R.dtype, np.floating):
        raise DatasetError(f"{source}: R has shape {R.shape} {R.dtype}, z has {len(z)} atoms")
    if z.ndim != 1 or not np.issubdtype(z.dtype, np.integer):
        raise DatasetError(f"{source}: z must be a 1-D integer array, got {z.dtype} {z.shape}")
    m = len(R)
    frags = []
    for k in range(n):
        if f"frag_idx_{k}" not in labels:
            raise DatasetError(f"{source}: missing key 'frag_idx_{k}' ({n} fragments)")
        frags.append(np.asarray(labels[f"frag_idx_{k}"]))
    shapes = {"frame_index": (m,), "E": (m,), "F": R.shape}
    for k, frag in enumerate(frags):
        shapes.update({f"E_frag_{k}": (m,), f"F_frag_{k}": (m, len(frag), 3)})
    for key, shape in shapes.items():
        if key in labels and np.shape(labels[key]) != shape:
            raise DatasetError(f"{source}: '{key}' has shape {np.shape(labels[key])}, need {shape}")
        if key in labels and not np.all(np.isfinite(labels[key])):
            raise DatasetError(f"{source}: '{key}' contains NaN or inf")
    if ("E" in labels) != ("F" in labels):
        raise DatasetError(f"{source}: complex labels need both 'E' and 'F'")
    present = [key in labels for key in _frag_keys(n)]
    if any(present) and not all(present):
        missing = [key for key in _frag_keys(n) if key not in labels]
        raise DatasetError(f"{source}: incomplete fragment labels, missing {missing}")
    if system is None:
        return
    if not np.array_equal(z, system.z):
        raise DatasetError(f"{source}: atomic numbers differ from system '{system.name}'")
    if n != system.n_fragments or not all(
        np.array_equal(a, b) for a, b in zip(frags, system.fragments, strict=True)
    ):
        raise DatasetError(f"{source}: fragment partition differs from system '{system.name}'")


def save_labels(labels: dict, path: str | os.PathLike) -> None:
    """Validate and write labels atomically as ``.npz`` (kcal/mol, Å)."""
    validate_labels(labels, source=str(path))
    arrays = {key: np.asarray(value) for key, value in labels.items()}
    save_npz_atomic(path, **arrays, e_unit=np.array("kcal/mol"), r_unit=np.array("Ang"))


def load_labels(path: str | os.PathLike, system: System | None = None) -> dict[str, np.ndarray]:
    """Read labels written by :func:`save_labels`; validate (against ``system`` if given)."""
    data = read_npz(path, {"R", "z", "frame_index", "n_fragments", "e_unit", "r_unit"}, "labels")
    e_unit, r_unit = str(data.pop("e_unit")), str(data.pop("r_unit"))
    if (e_unit, r_unit) != ("kcal/mol", "Ang"):
        # Written by save_labels only; other units would mean a foreign file.
        raise DatasetError(f"{path}: units must be kcal/mol and Ang, got {e_unit}, {r_unit}")
    data["n_fragments"] = int(data["n_fragments"])
    validate_labels(data, system, source=str(path))
    return data


def merge_labels(paths: list[str | os.PathLike]) -> dict[str, np.ndarray]:
    """Concatenate chunk label files in order; they must cover frames 0..M-1 exactly."""
    if not paths:
        raise DatasetError("merge_labels: no label files given")
    chunks = [load_labels(p) for p in paths]
    first = chunks[0]
    static = [key for key in first if key not in _per_frame_keys(first)]
    for path, chunk in zip(paths[1:], chunks[1:], strict=True):
        if set(chunk) != set(first):
            raise DatasetError(f"{path}: keys {sorted(chunk)} differ from {paths[0]}")
        for key in static:
            if not np.array_equal(chunk[key], first[key]):
                raise DatasetError(f"{path}: '{key}' differs from {paths[0]}")
    merged = {key: first[key] for key in static}
    for key in _per_frame_keys(first):
        merged[key] = np.concatenate([chunk[key] for chunk in chunks])
    if not np.array_equal(merged["frame_index"], np.arange(len(merged["R"]))):
        raise DatasetError(
            f"merge_labels: chunks {[str(p) for p in paths]} do not cover frames "
            f"0..{len(merged['R']) - 1} in order (missing, duplicated or misordered chunk)"
        )
    return merged


def combine_labels(*labels: dict) -> dict[str, np.ndarray]:
    """Union of label dicts for the same frames (e.g. ingested complex + fragment labels)."""
    out = dict(labels[0])
    for other in labels[1:]:
        for key, value in other.items():
            if key not in out:
                out[key] = value
            elif key in ("R", "z", "frame_index", "n_fragments") or key.startswith("frag_idx"):
                if not np.array_equal(out[key], value):
                    raise DatasetError(f"combine_labels: '{key}' differs between label sets")
            else:
                raise DatasetError(f"combine_labels: '{key}' is given by more than one label set")
    validate_labels(out, source="combined labels")
    return out
