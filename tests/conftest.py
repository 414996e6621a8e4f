"""Shared fixtures: small analytic potentials with exact energies and forces."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from ase.build import molecule


def morse_energy_forces(R: np.ndarray, R_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Morse pair terms (kcal/mol) around the reference distances of ``R_ref``."""
    N = R.shape[1]
    a, b = np.tril_indices(N, -1)
    diff = R[:, a] - R[:, b]
    r = np.linalg.norm(diff, axis=2)
    r0 = np.linalg.norm(R_ref[a] - R_ref[b], axis=1)
    ex = np.exp(-1.5 * (r - r0))
    E = (30.0 * (1.0 - ex) ** 2).sum(axis=1)
    dE_dr = 90.0 * (1.0 - ex) * ex
    g = dE_dr[..., None] * diff / r[..., None]
    F = np.zeros_like(R)
    np.add.at(F, (slice(None), a), -g)
    np.add.at(F, (slice(None), b), g)
    return E, F


class MorseMolecule:
    """Thermally perturbed geometries of a molecule with a Morse pair potential."""

    def __init__(self, name: str, seed: int = 0, noise: float = 0.08) -> None:
        atoms = molecule(name)
        self.z = atoms.numbers
        self.R_ref = atoms.positions
        self.rng = np.random.default_rng(seed)
        self.noise = noise

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        R = self.R_ref[None] + self.rng.normal(size=(n, len(self.z), 3)) * self.noise
        E, F = morse_energy_forces(R, self.R_ref)
        return R, E, F


@pytest.fixture
def methane() -> MorseMolecule:
    return MorseMolecule("CH4")


@pytest.fixture
def water() -> MorseMolecule:
    return MorseMolecule("H2O")
