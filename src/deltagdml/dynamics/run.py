"""Langevin MD with any ASE calculator, watched by a stability monitor.

ASE units inside (eV, Å, ase.units.fs); results in Å, ps, kcal/mol and K. A run that
breaks a stability criterion stops at the frame where it was detected and says why. With
one of our calculators, every saved frame also records the model's uncertainty per part
(in its estimator's unit: kcal/mol for "gp", σ for "nearest") and its ratio to the
calibrated thresholds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator
from ase.calculators.mixing import SumCalculator
from threadpoolctl import threadpool_limits

from deltagdml.data.md import com_distances, com_restraint, langevin
from deltagdml.data.systems import bonded_pairs
from deltagdml.errors import ConfigError
from deltagdml.gdml.calculator import GDMLCalculator
from deltagdml.gdml.composite import (
    DeltaModel,
    threshold_ratio,
    thresholds_by_part,
    uncertainty_by_part,
)
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.uncertainty import UNITS
from deltagdml.settings import RestraintSettings, StabilitySettings
from deltagdml.units import KCAL_MOL_PER_EV


class StabilityMonitor:
    """Checks geometries, energies and forces against :class:`StabilitySettings`.

    Covalent bonds (d < 1.2 × sum of covalent radii, within a fragment) and the fragment
    COM distances are taken from the starting geometry.
    """

    def __init__(
        self,
        atoms: Atoms,
        fragments: list[np.ndarray],
        criteria: StabilitySettings,
        energy_kcal_mol: float,
    ) -> None:
        self.c = criteria
        self.masses = atoms.get_masses()
        self.fragments = fragments
        label = np.empty(len(atoms), dtype=int)
        for k, idx in enumerate(fragments):
            label[idx] = k
        bonds = bonded_pairs(atoms)
        self.bonds = bonds[label[bonds[:, 0]] == label[bonds[:, 1]]]  # (n_bonds, 2)
        self.bond0 = self._bond_lengths(atoms.positions)
        self.com0 = com_distances(atoms.positions, self.masses, fragments)[0]
        self.energy0 = energy_kcal_mol
        self.iu = np.triu_indices(len(atoms), 1)

    def _bond_lengths(self, pos: np.ndarray) -> np.ndarray:
        return np.linalg.norm(pos[self.bonds[:, 0]] - pos[self.bonds[:, 1]], axis=1)

    def check(self, pos: np.ndarray, energy: float, forces: np.ndarray) -> str | None:
        """Why the state is unstable ('criterion: detail'), or None. Å, kcal/mol, kcal/mol/Å."""
        c = self.c
        if not (np.isfinite(pos).all() and np.isfinite(energy) and np.isfinite(forces).all()):
            return "NaN: non-finite positions, energy or forces"
        if self.bonds.size:
            stretch = self._bond_lengths(pos) / self.bond0
            b = int(np.argmax(stretch))
            if stretch[b] > c.bond_stretch:
                i, j = self.bonds[b]
                return (
                    f"bond stretch: bond {i}–{j} at {stretch[b]:.2f}× (limit {c.bond_stretch:g}×)"
                )
        d = np.linalg.norm(pos[self.iu[0]] - pos[self.iu[1]], axis=1)
        k = int(np.argmin(d))
        if d[k] < c.min_distance_A:
            return (
                f"atom clash: atoms {self.iu[0][k]}–{self.iu[1][k]} {d[k]:.2f} Å apart "
                f"(limit {c.min_distance_A:g} Å)"
            )
        com = com_distances(pos, self.masses, self.fragments)[0]
        if np.any(com > self.com0 + c.com_margin_A):
            return (
                f"dissociation: COM distance {com.max():.1f} Å "
                f"(start {self.com0.max():.1f} Å + {c.com_margin_A:g} Å)"
            )
        de = abs(energy - self.energy0) / len(pos)
        if de > c.max_energy_change_kcal_mol_per_atom:
            return (
                f"energy change: {de:.1f} kcal/mol per atom "
                f"(limit {c.max_energy_change_kcal_mol_per_atom:g})"
            )
        fmax = float(np.sqrt((forces**2).sum(axis=1)).max())
        if fmax > c.max_force_kcal_mol_A:
            return f"force: {fmax:.0f} kcal/mol/Å (limit {c.max_force_kcal_mol_A:g})"
        return None


class UncertaintyMonitor:
    """The uncertainty of each part of ``model`` at saved frames, against the parts'
    calibrated thresholds; a part above ``limit`` × its threshold breaks the run (None:
    never; nor without thresholds, as in model files written before they were stored)."""

    def __init__(self, model: GDMLModel | DeltaModel, limit: float | None) -> None:
        self.model = model
        self.limit = limit
        self.thresholds = thresholds_by_part(model)
        parts = model.parts() if isinstance(model, DeltaModel) else {"model": model}
        #: each part's unit: kcal/mol ("gp") or sigma ("nearest")
        self.units = {part: UNITS[m.uncertainty] for part, m in parts.items()}
        shared = set(self.units.values())
        #: the parts' unit, or 'part: unit, ...' when they differ
        self.unit = (
            shared.pop()
            if len(shared) == 1
            else ", ".join(f"{p}: {u}" for p, u in self.units.items())
        )

    def measure(self, pos: np.ndarray) -> dict[str, float]:
        """Uncertainty of each part at positions (N, 3) Å; NaN where they are not finite."""
        if not np.isfinite(pos).all():
            return dict.fromkeys(self.thresholds, float("nan"))
        stds = uncertainty_by_part(self.model, pos[None])
        return {part: float(std[0]) for part, std in stds.items()}

    def ratio(self, stds: dict[str, float]) -> float:
        """The largest part's uncertainty over its threshold; NaN without thresholds."""
        per_frame = {part: np.array([std]) for part, std in stds.items()}
        return float(threshold_ratio(per_frame, self.thresholds)[0])

    def check(self, stds: dict[str, float]) -> str | None:
        """Why the uncertainties ``stds`` (by part) break the limit ('uncertainty: detail'),
        or None."""
        ratios = {p: stds[p] / t for p, t in self.thresholds.items() if t is not None and t > 0}
        if self.limit is None or not ratios:
            return None
        part = max(ratios, key=lambda p: ratios[p])
        if ratios[part] > self.limit:
            return (
                f"uncertainty: {part} at {ratios[part]:.2f}× its threshold (limit {self.limit:g}×)"
            )
        return None


class MDCalculator(GDMLCalculator):
    """:class:`GDMLCalculator` whose cache compares positions only.

    Atoms, cell and boundary conditions do not change during MD; ASE's full state check
    costs about 0.5 ms per step, more than a prediction of a small model.
    """

    def check_state(self, atoms: Atoms, tol: float = 1e-15) -> list[str]:
        if self.atoms is None or not np.array_equal(self.atoms.positions, atoms.positions):
            return ["positions"]
        return []


@dataclass
class MDResult:
    """Saved frames (every ``stride`` steps from t = 0) and the outcome of a run."""

    time_ps: np.ndarray
    R: np.ndarray  # (frames, N, 3) Å
    energy_kcal_mol: np.ndarray  # potential energy
    forces_kcal_mol_A: np.ndarray  # (frames, N, 3)
    temperature_K: np.ndarray  # instantaneous kinetic temperature
    steps_done: int
    wall_s: float  # MD alone
    uncertainty_wall_s: float  # the uncertainty at saved frames
    #: per part ('model' for a single model), (frames,) in ``uncertainty_unit``; empty
    #: without a model (another ASE calculator)
    uncertainty: dict[str, np.ndarray]
    #: (frames,) the largest part's uncertainty over its threshold; NaN without thresholds
    uncertainty_ratio: np.ndarray
    uncertainty_unit: str  # '' without a model
    reason: str | None = None  # None: stable
    failure_time_ps: float = float("nan")

    @property
    def stable(self) -> bool:
        return self.reason is None

    @property
    def left_data_time_ps(self) -> float:
        """Time (ps) of the first saved frame above its threshold (ratio > 1); NaN if none."""
        above = np.flatnonzero(self.uncertainty_ratio > 1.0)
        return float(self.time_ps[above[0]]) if above.size else float("nan")

    def frame_info(self) -> dict[str, np.ndarray]:
        """Per-frame values for the frames' ``atoms.info``: ``time_ps`` and, if recorded,
        ``uncertainty_<part>``, ``uncertainty_ratio`` and ``uncertainty_unit``."""
        info = {"time_ps": self.time_ps}
        if self.uncertainty:
            info |= {f"uncertainty_{part}": std for part, std in self.uncertainty.items()}
            info["uncertainty_ratio"] = self.uncertainty_ratio
            info["uncertainty_unit"] = np.full(len(self.time_ps), self.uncertainty_unit)
        return info

    @property
    def steps_per_s(self) -> float:
        return self.steps_done / self.wall_s if self.wall_s > 0 else float("nan")


def _model_forces(atoms: Atoms, calc: BaseCalculator) -> np.ndarray:
    """The model's forces (eV/Å) as the integrator applies them: the fixed centre of mass
    projected out, any restraint left out (cached by the last step)."""
    forces = calc.get_forces(atoms).copy()
    for constraint in atoms.constraints:
        constraint.adjust_forces(atoms, forces)
    return forces


def run_md(
    atoms: Atoms,
    calc: BaseCalculator,
    fragments: list[np.ndarray],
    temperature_K: float,
    timestep_fs: float,
    n_steps: int,
    stride: int,
    friction_per_fs: float,
    seed: int,
    criteria: StabilitySettings,
    restraint: RestraintSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> MDResult:
    """Langevin MD from ``atoms`` with Maxwell–Boltzmann velocities drawn from ``seed``.

    The stability criteria are checked at t = 0 and every ``stride`` steps on the model's
    energy and forces (those recorded; a restraint, if on, is left out); the first broken
    criterion ends the run. With our calculator (:class:`GDMLCalculator`, whose model this
    is), the uncertainty of each part is recorded at these frames too and checked against
    ``criteria.max_uncertainty_ratio``; any other ASE calculator records none.
    Deterministic for a seed. ``progress`` receives a line at every tenth of the run.
    Raises :class:`ConfigError` naming the argument for a negative temperature or
    friction, a timestep ≤ 0, or fewer than one step or step per frame.
    """
    for name, count in (("n_steps", n_steps), ("stride", stride)):
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise ConfigError(f"run_md: {name} = {count!r} must be an integer ≥ 1")
    for name, value, positive in (
        ("temperature_K", temperature_K, False),
        ("timestep_fs", timestep_fs, True),
        ("friction_per_fs", friction_per_fs, False),
    ):
        if not np.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "> 0" if positive else "≥ 0"
            raise ConfigError(f"run_md: {name} = {value!r} must be finite and {bound}")
    atoms = Atoms(atoms.numbers, positions=atoms.positions)
    restraint = restraint or RestraintSettings(enabled=False)
    bias = com_restraint(restraint, atoms.positions, atoms.get_masses(), fragments)
    atoms.calc = calc if bias is None else SumCalculator([calc, bias])
    dyn = langevin(atoms, temperature_K, timestep_fs, friction_per_fs, seed)
    frames, energies, forces_seen, temps, stds = [], [], [], [], []
    monitor = None
    watch = (
        UncertaintyMonitor(calc.model, criteria.max_uncertainty_ratio)
        if isinstance(calc, GDMLCalculator) and isinstance(calc.model, GDMLModel | DeltaModel)
        else None
    )
    reason = None
    t0 = time.perf_counter()
    uncertainty_s = 0.0
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(over="ignore", invalid="ignore"):
        while True:
            pos = atoms.positions.copy()
            energy = calc.get_potential_energy(atoms) * KCAL_MOL_PER_EV
            forces = _model_forces(atoms, calc) * KCAL_MOL_PER_EV
            frames.append(pos)
            energies.append(energy)
            forces_seen.append(forces)
            temps.append(atoms.get_temperature())
            if monitor is None:
                monitor = StabilityMonitor(atoms, fragments, criteria, energy)
            reason = monitor.check(pos, energy, forces)
            if watch is not None:
                t_std = time.perf_counter()
                stds.append(watch.measure(pos))
                reason = reason or watch.check(stds[-1])
                uncertainty_s += time.perf_counter() - t_std
            if reason is not None or dyn.nsteps >= n_steps:
                break
            before = dyn.nsteps
            dyn.run(min(stride, n_steps - dyn.nsteps))
            if progress is not None and 10 * dyn.nsteps // n_steps > 10 * before // n_steps:
                rate = dyn.nsteps / (time.perf_counter() - t0 - uncertainty_s)
                progress(
                    f"{dyn.nsteps * timestep_fs / 1000:.2f} of {n_steps * timestep_fs / 1000:.2f}"
                    f" ps, T = {atoms.get_temperature():.0f} K, {rate:.0f} steps/s"
                )
    wall = time.perf_counter() - t0 - uncertainty_s
    time_ps = np.arange(len(frames)) * stride * timestep_fs / 1000.0
    time_ps[-1] = dyn.nsteps * timestep_fs / 1000.0
    if watch is None:
        uncertainty, ratio, unit = {}, np.full(len(frames), np.nan), ""
    else:
        uncertainty = {part: np.array([s[part] for s in stds]) for part in watch.thresholds}
        ratio, unit = threshold_ratio(uncertainty, watch.thresholds), watch.unit
    return MDResult(
        time_ps=time_ps,
        R=np.array(frames),
        energy_kcal_mol=np.array(energies),
        forces_kcal_mol_A=np.array(forces_seen),
        temperature_K=np.array(temps),
        steps_done=dyn.nsteps,
        wall_s=wall,
        uncertainty_wall_s=uncertainty_s,
        uncertainty=uncertainty,
        uncertainty_ratio=ratio,
        uncertainty_unit=unit,
        reason=reason,
        failure_time_ps=float(time_ps[-1]) if reason else float("nan"),
    )
