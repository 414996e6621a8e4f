"""Langevin MD sampling of complex geometries, and the trajectory files it writes.

Weakly bound complexes drift apart in unrestrained MD, so by default the fragments' COM
distance is held by the flat-bottom restraint of :mod:`deltagdml.data.md`. The restraint
only shapes the sampling; the saved frames are positions, labelled later without it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.calculators.mixing import SumCalculator

from deltagdml.atomic_io import save_npz_atomic
from deltagdml.data.calculators import make_calculator
from deltagdml.data.md import com_distances, com_restraint, langevin
from deltagdml.data.systems import System
from deltagdml.errors import ConfigError, DatasetError
from deltagdml.npz_io import read_npz
from deltagdml.settings import CalculatorSettings, RestraintSettings
from deltagdml.units import KCAL_MOL_PER_EV, length_scale

Progress = Callable[[str], None]


def _reporter(progress: Progress | None) -> Progress:
    if progress is not None:
        return progress
    return lambda msg: print(msg, file=sys.stderr, flush=True)


def sample_md(
    system: System,
    calculator: CalculatorSettings | None,
    temperature_K: float,
    timestep_fs: float,
    n_frames: int,
    stride: int,
    seed: int,
    friction_per_fs: float = 0.01,
    restraint: RestraintSettings | None = None,
    progress: Progress | None = None,
    equilibration_steps: int = 0,
) -> dict[str, np.ndarray]:
    """Run Langevin MD and keep every ``stride``-th geometry after equilibration.

    Returns R (n_frames, N, 3) Å, z (N,), com_distance (n_frames,) Å (largest COM distance
    of a fragment k > 0 to fragment 0), time_fs (n_frames,), and the sampling calculator's
    own energies sampler_E (kcal/mol) and forces sampler_F (kcal/mol/Å), without the
    restraint. Deterministic for a seed.
    """
    for key, value in (("n_frames", n_frames), ("stride", stride)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"MD sampling: '{key}' must be a positive integer, got {value!r}")
    if temperature_K <= 0 or timestep_fs <= 0 or friction_per_fs < 0 or equilibration_steps < 0:
        raise ConfigError(
            f"MD sampling: need temperature_K > 0, timestep_fs > 0, friction_per_fs >= 0, "
            f"equilibration_steps >= 0; got {temperature_K}, {timestep_fs}, {friction_per_fs}, "
            f"{equilibration_steps}"
        )
    report = _reporter(progress)
    atoms = Atoms(system.atoms.numbers, positions=system.atoms.positions)
    calc = make_calculator(calculator, system.charge, system.multiplicity)
    masses = system.atoms.get_masses()
    restraint = restraint or RestraintSettings()
    bias = com_restraint(restraint, system.atoms.positions, masses, system.fragments)
    atoms.calc = calc if bias is None else SumCalculator([calc, bias])
    dyn = langevin(atoms, temperature_K, timestep_fs, friction_per_fs, seed)
    R = np.empty((n_frames, len(atoms), 3))
    E, F = np.empty(n_frames), np.empty((n_frames, len(atoms), 3))
    every = max(1, n_frames // 10)
    try:
        dyn.run(equilibration_steps)
        for i in range(n_frames):
            dyn.run(stride)
            R[i] = atoms.positions
            if not np.all(np.isfinite(R[i])):
                raise RuntimeError("non-finite positions")
            # the sampler's own (unrestrained) energy and forces, cached by the last step
            E[i] = calc.get_potential_energy(atoms) * KCAL_MOL_PER_EV
            F[i] = calc.get_forces(atoms) * KCAL_MOL_PER_EV
            if (i + 1) % every == 0 or i + 1 == n_frames:
                report(f"{system.name}: MD frame {i + 1}/{n_frames}")
    except RuntimeError as exc:
        raise RuntimeError(
            f"system '{system.name}': MD failed at step {dyn.nsteps}: {exc}"
        ) from exc
    return {
        "R": R,
        "z": system.atoms.numbers.copy(),
        "com_distance": com_distances(R, masses, system.fragments).max(axis=1),
        "time_fs": (equilibration_steps + stride * np.arange(1, n_frames + 1)) * timestep_fs,
        "sampler_E": E,
        "sampler_F": F,
    }


#: Optional per-frame records of a trajectory file: sampling replica, its thermostat
#: temperature (K), index among all candidate frames, the collective variables (Å), and
#: the sampler's energy (kcal/mol) and forces (kcal/mol/Å).
TRAJECTORY_EXTRAS = (
    "replica",
    "temperature_K",
    "candidate_index",
    "cv",
    "sampler_E",
    "sampler_F",
)
#: Optional strings: names of the CVs, the sampling and the labelling method.
TRAJECTORY_TEXTS = ("cv_names", "sampler", "reference")


def save_trajectory(traj: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write a trajectory (from :func:`sample_md`, plus any of :data:`TRAJECTORY_EXTRAS`
    and :data:`TRAJECTORY_TEXTS`) atomically as ``.npz`` (Å, fs, K)."""
    extras = {key: np.asarray(traj[key]) for key in TRAJECTORY_EXTRAS if key in traj}
    texts = {key: np.asarray(traj[key], dtype=str) for key in TRAJECTORY_TEXTS if key in traj}
    save_npz_atomic(
        path,
        R=np.asarray(traj["R"], dtype=float),
        z=np.asarray(traj["z"], dtype=int),
        com_distance=np.asarray(traj["com_distance"], dtype=float),
        time_fs=np.asarray(traj["time_fs"], dtype=float),
        r_unit=np.array("Ang"),
        **extras,
        **texts,
    )


def load_trajectory(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and validate a trajectory written by :func:`save_trajectory` (no pickle)."""
    data = read_npz(
        path,
        {"R", "z", "com_distance", "time_fs", "r_unit"},
        "trajectory",
        optional=(*TRAJECTORY_EXTRAS, *TRAJECTORY_TEXTS),
    )
    r_unit = str(data["r_unit"])
    try:
        scale = length_scale(r_unit)
    except KeyError:
        raise DatasetError(f"{path}: unknown length unit r_unit={r_unit!r}") from None
    traj = {key: value for key, value in data.items() if key != "r_unit"}
    R, z = traj["R"], traj["z"]
    m = R.shape[0] if R.ndim == 3 else -1
    per_frame = ["com_distance", "time_fs", *(k for k in TRAJECTORY_EXTRAS if k in traj)]
    if (
        R.ndim != 3
        or R.shape[1:] != (z.shape[0], 3)
        or not np.issubdtype(z.dtype, np.integer)
        or any(traj[key].shape[:1] != (m,) for key in per_frame)
    ):
        shapes = ", ".join(f"{key} {traj[key].shape}" for key in per_frame)
        raise DatasetError(
            f"{path}: inconsistent shapes R {R.shape}, z {z.shape} {z.dtype}, {shapes}"
        )
    if not np.all(np.isfinite(R)):
        raise DatasetError(f"{path}: 'R' contains NaN or inf")
    for key in ("R", "com_distance", "cv"):
        if key in traj:
            traj[key] = traj[key] * scale
    if "sampler_F" in traj:
        traj["sampler_F"] = traj["sampler_F"] / scale
    return traj
