"""Unit conventions: sGDML files use kcal/mol and Å, ASE uses eV and Å.

Every conversion in the package goes through the constants and helpers here.
"""

from __future__ import annotations

from ase import units as _ase_units

#: eV per kcal/mol (multiply kcal/mol by this to get eV).
EV_PER_KCAL_MOL: float = _ase_units.kcal / _ase_units.mol
#: kcal/mol per eV.
KCAL_MOL_PER_EV: float = 1.0 / EV_PER_KCAL_MOL

#: Energy units accepted in dataset files, with their value in kcal/mol. Names are matched
#: without regard to case, spaces or a "^-1"/"-1" spelling (see :func:`energy_scale`).
ENERGY_UNITS_IN_KCAL_MOL: dict[str, float] = {
    "kcal/mol": 1.0,
    "ev": KCAL_MOL_PER_EV,
    "mev": 1e-3 * KCAL_MOL_PER_EV,
    "kj/mol": (_ase_units.kJ / _ase_units.mol) * KCAL_MOL_PER_EV,
    "ha": _ase_units.Hartree * KCAL_MOL_PER_EV,
    "hartree": _ase_units.Hartree * KCAL_MOL_PER_EV,
    "au": _ase_units.Hartree * KCAL_MOL_PER_EV,
    "ry": _ase_units.Rydberg * KCAL_MOL_PER_EV,
}
#: Length units accepted in dataset files, with their value in Å (matched like energies).
LENGTH_UNITS_IN_ANG: dict[str, float] = {
    "ang": 1.0,
    "a": 1.0,
    "å": 1.0,
    "angstrom": 1.0,
    "angstroms": 1.0,
    "bohr": _ase_units.Bohr,
    "au": _ase_units.Bohr,
    "nm": 10.0,
    "pm": 0.01,
}


def _normalise(name: str) -> str:
    name = "".join(str(name).split()).lower().replace(".", "")
    return name.replace("mol^-1", "/mol").replace("mol-1", "/mol").replace("//", "/")


def length_scale(name: str) -> float:
    """Å per ``name`` (e.g. ``'Angstrom'``, ``'bohr'``); KeyError for an unknown unit."""
    return LENGTH_UNITS_IN_ANG[_normalise(name)]


def energy_scale(name: str) -> float:
    """kcal/mol per ``name`` (e.g. ``'eV'``, ``'kcal mol^-1'``); KeyError if unknown."""
    return ENERGY_UNITS_IN_KCAL_MOL[_normalise(name)]
