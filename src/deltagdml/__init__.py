"""Δ-sGDML: symmetric gradient-domain kernel force fields, learned per fragment plus binding.

``load_model(path)`` loads a full sGDML model or a Δ model file; both ``predict(R)``
(kcal/mol, kcal/mol/Å, Å). ``GDMLCalculator(model)`` serves either to ASE (eV, eV/Å).
"""

from deltagdml.gdml.calculator import GDMLCalculator
from deltagdml.gdml.delta_io import load_model
from deltagdml.version import __version__

__all__ = ["GDMLCalculator", "__version__", "load_model"]
