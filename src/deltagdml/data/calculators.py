"""Reference calculators (ASE) built from a config spec.

Spec forms::

    None or {"name": "tblite", "method": "GFN2-xTB", "accuracy": 0.1,
             "electronic_temperature": 300.0, "max_iterations": 250}
    {"name": "ase", "class": "ase.calculators.emt:EMT", "kwargs": {...}, "pass_charge": false}

Performance: create one calculator per process and per (system, fragment) and feed it new
positions frame after frame; tblite then updates its API object in place and restarts the
SCF from the previous wavefunction. Parallelism is across processes (workflow jobs), each
single-threaded: call :func:`set_single_thread` before tblite is first imported, since
OpenMP reads its thread count when the library is loaded.
"""

from __future__ import annotations

import importlib
import os

from ase.calculators.calculator import BaseCalculator

from ..errors import ConfigError

#: Defaults of the tblite calculator; accuracy 0.1 tightens the SCF so that forces match
#: finite differences of the energy to ~1e-4 kcal/mol/Å (about 15 % more time than 1.0).
TBLITE_DEFAULTS: dict[str, object] = {
    "method": "GFN2-xTB",
    "accuracy": 0.1,
    "electronic_temperature": 300.0,
    "max_iterations": 250,
}
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def set_single_thread() -> None:
    """Default OpenMP/BLAS thread counts to 1 (variables already set are left alone)."""
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")


def make_calculator(spec: dict | None, charge: int, multiplicity: int) -> BaseCalculator:
    """A fresh ASE calculator for a molecule of total ``charge`` and spin ``multiplicity``."""
    spec = dict(spec or {"name": "tblite"})
    name = spec.pop("name", "tblite")
    if name == "tblite":
        unknown = set(spec) - set(TBLITE_DEFAULTS)
        if unknown:
            raise ConfigError(
                f"calculator spec: unknown tblite key(s) {sorted(unknown)}; "
                f"allowed: name, {', '.join(TBLITE_DEFAULTS)}"
            )
        set_single_thread()
        from tblite.ase import TBLite

        # tblite maps multiplicity to uhf = multiplicity - 1 unpaired electrons.
        return TBLite(
            **{**TBLITE_DEFAULTS, **spec},
            charge=charge,
            multiplicity=multiplicity,
            verbosity=0,
        )
    if name == "ase":
        return _generic_calculator(spec, charge, multiplicity)
    raise ConfigError(f"calculator spec: unknown calculator name {name!r}; use 'tblite' or 'ase'")


def _generic_calculator(spec: dict, charge: int, multiplicity: int) -> BaseCalculator:
    unknown = set(spec) - {"class", "kwargs", "pass_charge"}
    if unknown or "class" not in spec:
        raise ConfigError(
            "calculator spec: name 'ase' needs 'class' ('module:Class') and may hold "
            f"'kwargs', 'pass_charge'; got keys {sorted(spec)}"
        )
    module_name, _, class_name = str(spec["class"]).partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"calculator spec: cannot import {spec['class']!r}: {exc}") from exc
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"calculator spec: 'kwargs' must be a mapping, got {kwargs!r}")
    kwargs = dict(kwargs)
    if spec.get("pass_charge", False):
        kwargs.update(charge=charge, multiplicity=multiplicity)
    try:
        calc = cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"calculator spec: cannot create {spec['class']}: {exc}") from exc
    if not isinstance(calc, BaseCalculator):
        raise ConfigError(f"calculator spec: {spec['class']} is not an ASE calculator")
    return calc
