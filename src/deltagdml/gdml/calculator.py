"""ASE calculator for trained models (sGDML single models or Δ composites).

Models work in kcal/mol and Å; the calculator reports eV and eV/Å as ASE expects.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from deltagdml.errors import ModelError
from deltagdml.gdml.composite import (
    DeltaModel,
    threshold_ratio,
    thresholds_by_part,
    uncertainty_by_part,
)
from deltagdml.units import EV_PER_KCAL_MOL


class EnergyForceModel(Protocol):
    """Anything with ``predict(R) -> (E, F)`` in kcal/mol, kcal/mol/Å and atom numbers ``z_``."""

    z_: np.ndarray

    def predict(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class GDMLCalculator(Calculator):
    """ASE calculator returning energy (eV) and forces (eV/Å) of a trained model.

    With ``uncertainty=True`` every calculation also puts the model's uncertainty into
    ``results``: ``uncertainty`` (the combined value, in the estimator's unit: eV for the
    GP energy std, σ for the nearest-geometry distance), ``uncertainty_<part>`` per part of
    a Δ model, and ``uncertainty_ratio``, the largest part's uncertainty over its calibrated
    threshold (above 1: the model has left its data; NaN without thresholds).
    """

    implemented_properties = ["energy", "forces", "free_energy"]

    def __init__(self, model: EnergyForceModel, uncertainty: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.uncertainty = uncertainty

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
        if self.uncertainty:
            self.results |= uncertainty_results(self.model, self.atoms.positions[None])


def uncertainty_results(model, R: np.ndarray) -> dict[str, float]:
    """The entries :class:`GDMLCalculator` adds to ``results`` for one geometry R (1, N, 3)."""
    stds = uncertainty_by_part(model, R)
    parts = model.parts() if isinstance(model, DeltaModel) else {"model": model}
    scale = {part: EV_PER_KCAL_MOL if m.uncertainty == "gp" else 1.0 for part, m in parts.items()}
    out = {f"uncertainty_{part}": float(std[0]) * scale[part] for part, std in stds.items()}
    combined = np.sqrt(sum((std[0] * scale[part]) ** 2 for part, std in stds.items()))
    ratio = threshold_ratio(stds, thresholds_by_part(model))
    return out | {"uncertainty": float(combined), "uncertainty_ratio": float(ratio[0])}
