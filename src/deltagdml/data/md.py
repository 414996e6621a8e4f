"""Langevin dynamics, the flat-bottom COM restraint and the COM distance: the MD pieces
that the sampling (:mod:`deltagdml.data.sampling`) and the stability study
(:mod:`deltagdml.dynamics.run`) share.

The restraint acts on the distance r between the centre of mass (COM) of each fragment
k > 0 and that of fragment 0: E = ½ k (r − r0)² for r > r0, zero inside (eV, Å).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation

from deltagdml.errors import ConfigError
from deltagdml.settings import RestraintSettings

#: Default flat bottom of the restraint: the starting COM distance + R0_MARGIN Å.
R0_MARGIN = 1.0


def com_distances(R: np.ndarray, masses: np.ndarray, fragments: list[np.ndarray]) -> np.ndarray:
    """Distances (M, n-1) between the COM of each fragment k > 0 and that of fragment 0."""
    R = np.asarray(R, dtype=float).reshape(-1, len(masses), 3)
    coms = [np.einsum("i,mij->mj", masses[idx], R[:, idx]) / masses[idx].sum() for idx in fragments]
    return np.stack([np.linalg.norm(c - coms[0], axis=1) for c in coms[1:]], axis=1)


class COMRestraint(Calculator):
    """Flat-bottom harmonic restraint on fragment COM distances (eV, Å)."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, fragments: list[np.ndarray], r0: np.ndarray, k: float) -> None:
        super().__init__()
        self.fragments = [np.asarray(f, dtype=int) for f in fragments]
        self.r0 = np.broadcast_to(np.asarray(r0, dtype=float), (len(fragments) - 1,))
        self.k = float(k)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        pos, masses = self.atoms.positions, self.atoms.get_masses()
        forces = np.zeros_like(pos)
        energy = 0.0
        ref = self.fragments[0]
        com0 = masses[ref] @ pos[ref] / masses[ref].sum()
        for idx, r0 in zip(self.fragments[1:], self.r0, strict=True):
            d = masses[idx] @ pos[idx] / masses[idx].sum() - com0
            r = np.linalg.norm(d)
            if r <= r0:
                continue
            energy += 0.5 * self.k * (r - r0) ** 2
            grad = self.k * (r - r0) * d / r  # dE/d(COM_k - COM_0)
            forces[idx] -= np.outer(masses[idx] / masses[idx].sum(), grad)
            forces[ref] += np.outer(masses[ref] / masses[ref].sum(), grad)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}


def com_restraint(
    settings: RestraintSettings, positions: np.ndarray, masses: np.ndarray, fragments: list
) -> COMRestraint | None:
    """The COM restraint of ``settings`` for a complex starting at ``positions`` (Å);
    None when disabled. r0 defaults to the starting COM distances + :data:`R0_MARGIN`."""
    if not settings.enabled:
        return None
    k = float(settings.k)
    if settings.r0 is not None:
        r0 = np.asarray(float(settings.r0))
    else:
        r0 = com_distances(positions, masses, fragments)[0] + R0_MARGIN
    if k <= 0 or np.any(r0 <= 0):
        raise ConfigError(f"restraint: need k > 0 and r0 > 0, got k={k}, r0={r0}")
    return COMRestraint(fragments, r0, k)


def langevin(
    atoms: Atoms, temperature_K: float, timestep_fs: float, friction_per_fs: float, seed: int
) -> Langevin:
    """ASE Langevin dynamics of ``atoms`` (calculator attached) from Maxwell–Boltzmann
    momenta without net translation or rotation; centre of mass fixed; seeded."""
    rng = np.random.default_rng(seed)
    # Maxwell–Boltzmann momenta (what ASE's MaxwellBoltzmannDistribution draws), from ``rng``
    sigma = np.sqrt(atoms.get_masses() * units.kB * temperature_K)
    atoms.set_momenta(sigma[:, None] * rng.standard_normal((len(atoms), 3)))
    Stationary(atoms)
    ZeroRotation(atoms)
    atoms.set_constraint(FixCom())
    return Langevin(
        atoms,
        timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )
