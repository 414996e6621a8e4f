"""ASE calculator for trained models (sGDML single models or Δ composites).

Models work in kcal/mol and Å; the calculator reports eV and eV/Å as ASE expects.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from deltagdml.errors import ModelError
from deltagdml.units import EV_PER_KCAL_MOL


class EnergyForceModel(Protocol):
    """Anything with ``predict(R) -> (E, F)`` in kcal/mol, kcal/mol/Å and atom numbers ``z_``."""

    z_: np.ndarray

    def predict(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class GDMLCalculator(Calculator):
    """ASE calculator returning energy (eV) and forces (eV/Å) of a trained model."""

    implemented_properties = ["energy", "forces", "free_energy"]

    def __init__(self, model: EnergyForceModel, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        if not np.array_equal(self.atoms.numbers, self.model.z_):
            raise ModelError(
                f"model was trained for atoms {self.model.z_.tolist()} but the structure has "
                f"{self.atoms.numbers.tolist()}"
            )
        E, F = self.model.predict(self.atoms.positions[None])
        energy = float(E[0]) * EV_PER_KCAL_MOL
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": F[0] * EV_PER_KCAL_MOL,
        }
