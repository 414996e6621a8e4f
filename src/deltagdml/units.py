"""Unit conventions: sGDML files use kcal/mol and Å, ASE uses eV and Å.

Every conversion in the package goes through the constants and helpers here.
"""

from __future__ import annotations

from ase import units as _ase_units

#: eV per kcal/mol (multiply kcal/mol by this to get eV).
EV_PER_KCAL_MOL: float = _ase_units.kcal / _ase_units.mol
#: kcal/mol per eV.
KCAL_MOL_PER_EV: float = 1.0 / EV_PER_KCAL_MOL

#: Energy units accepted in dataset files, with their value in kcal/mol.
ENERGY_UNITS_IN_KCAL_MOL: dict[str, float] = {
    "kcal/mol": 1.0,
    "eV": KCAL_MOL_PER_EV,
    "meV": 1e-3 * KCAL_MOL_PER_EV,
    "kJ/mol": (_ase_units.kJ / _ase_units.mol) * KCAL_MOL_PER_EV,
    "Ha": _ase_units.Hartree * KCAL_MOL_PER_EV,
    "Hartree": _ase_units.Hartree * KCAL_MOL_PER_EV,
}
#: Length units accepted in dataset files, with their value in Å.
LENGTH_UNITS_IN_ANG: dict[str, float] = {
    "Ang": 1.0,
    "A": 1.0,
    "Å": 1.0,
    "angstrom": 1.0,
    "bohr": _ase_units.Bohr,
    "Bohr": _ase_units.Bohr,
    "au": _ase_units.Bohr,
}
