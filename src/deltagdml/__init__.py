"""Δ-sGDML: symmetric gradient-domain kernel force fields, learned per fragment plus binding.

``load_model(path)`` loads a full sGDML model or a Δ model file; both ``predict(R)``
(kcal/mol, kcal/mol/Å, Å). ``GDMLCalculator(model)`` serves either to ASE (eV, eV/Å).
"""

__version__ = "0.1.0"

from .calculator import GDMLCalculator  # noqa: E402
from .delta_io import load_model  # noqa: E402

__all__ = ["GDMLCalculator", "__version__", "load_model"]
