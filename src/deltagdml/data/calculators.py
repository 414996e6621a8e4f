"""Reference calculators (ASE) built from a config spec.

Config forms (:class:`~deltagdml.settings.CalculatorSettings`)::

    None or {"name": "tblite", "method": "GFN2-xTB", "accuracy": 0.1,
             "electronic_temperature": 300.0, "max_iterations": 250}
    {"name": "gfnff"}   (GFN-FF force field through the ``gfnff`` package; fast sampler)
    {"name": "ase", "class": "ase.calculators.emt:EMT", "kwargs": {...}, "pass_charge": false}

Performance: create one calculator per process and per (system, fragment) and feed it new
positions frame after frame; tblite then updates its API object in place and restarts the
SCF from the previous wavefunction. Parallelism is across processes (workflow jobs), each
single-threaded: call :func:`set_single_thread` before tblite is first imported, since
OpenMP reads its thread count when the library is loaded.
"""

from __future__ import annotations

import importlib
import inspect
import os

from ase.calculators.calculator import BaseCalculator

from deltagdml.errors import ConfigError
from deltagdml.settings import CalculatorSettings, TBLiteSettings, defaults

#: Options of the tblite calculator and their defaults (:class:`TBLiteSettings`).
TBLITE_DEFAULTS: dict[str, object] = defaults(TBLiteSettings)
CALCULATOR_NAMES = ("tblite", "gfnff", "ase")
TBLITE_METHODS = ("GFN2-xTB", "GFN1-xTB", "IPEA1-xTB")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def set_single_thread() -> None:
    """Default OpenMP/BLAS thread counts to 1 (variables already set are left alone)."""
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")


def make_calculator(
    settings: CalculatorSettings | None, charge: int, multiplicity: int
) -> BaseCalculator:
    """A fresh ASE calculator for a molecule of total ``charge`` and spin ``multiplicity``
    (``settings`` None: GFN2-xTB)."""
    settings = settings or CalculatorSettings()
    name, spec = settings.name, dict(settings.options)
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
    if name == "gfnff":
        if spec:
            raise ConfigError(f"calculator spec: gfnff takes no options, got {sorted(spec)}")
        if multiplicity != 1:
            raise ConfigError(
                f"calculator spec: gfnff has no spin, got multiplicity {multiplicity}"
            )
        set_single_thread()
        from gfnff.ase_calculator import GFNFF

        return GFNFF(charge=charge)
    if name == "ase":
        return _generic_calculator(spec, charge, multiplicity)
    raise ConfigError(
        f"calculator spec: unknown calculator name {name!r}; use one of {CALCULATOR_NAMES}"
    )


def calculator_label(settings: CalculatorSettings | None) -> str:
    """Human-readable name of a calculator, e.g. ``GFN2-xTB (tblite)``."""
    settings = settings or CalculatorSettings()
    if settings.name == "tblite":
        return f"{settings.options.get('method', TBLITE_DEFAULTS['method'])} (tblite)"
    if settings.name == "gfnff":
        return "GFN-FF (gfnff)"
    return str(settings.options.get("class", settings.name))


def check_calculator_spec(spec: dict | None, where: str) -> None:
    """Validate a calculator spec without building it: keys, and that its code imports.

    Raises :class:`ConfigError` naming ``where`` (the config key), so that a bad spec
    fails when the workflow is planned instead of inside its first job.
    """
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping, got {spec!r}")
    name = spec.get("name", "tblite")
    module = {"tblite": "tblite.ase", "gfnff": "gfnff.ase_calculator"}.get(name)
    try:
        if name == "ase":
            _import_class(spec, "calculator spec")
            return
        if module is None:
            raise ConfigError(f"unknown calculator name {name!r}; use one of {CALCULATOR_NAMES}")
        unknown = set(spec) - {"name"} - (set(TBLITE_DEFAULTS) if name == "tblite" else set())
        if unknown:
            raise ConfigError(f"unknown {name} key(s) {sorted(unknown)}")
        if name == "tblite":
            _check_tblite_values(spec)
        importlib.import_module(module)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('calculator spec: ')}") from exc
    except ImportError as exc:
        raise ConfigError(
            f"{where}: calculator {name!r} needs a package that is not installed: {exc}"
        ) from exc


def _check_tblite_values(spec: dict) -> None:
    method = spec.get("method", TBLITE_DEFAULTS["method"])
    if method not in TBLITE_METHODS:
        raise ConfigError(f"method {method!r} is not one of tblite's {TBLITE_METHODS}")
    for key in ("accuracy", "electronic_temperature", "max_iterations"):
        value = spec.get(key, TBLITE_DEFAULTS[key])
        integral = key == "max_iterations"
        types = (int,) if integral else (int, float)
        if isinstance(value, bool) or not isinstance(value, types) or not value > 0:
            kind = "a positive integer" if integral else "a positive number"
            raise ConfigError(f"{key} must be {kind}, got {value!r}")


def _import_class(spec: dict, where: str) -> type:
    """The class named by an ``{"name": "ase", "class": "module:Class"}`` spec, checked."""
    unknown = set(spec) - {"name", "class", "kwargs", "pass_charge"}
    if unknown or "class" not in spec:
        raise ConfigError(
            f"{where}: name 'ase' needs 'class' ('module:Class') and may hold "
            f"'kwargs', 'pass_charge'; got keys {sorted(spec)}"
        )
    if not isinstance(spec.get("kwargs") or {}, dict):
        raise ConfigError(f"{where}: 'kwargs' must be a mapping, got {spec['kwargs']!r}")
    module_name, _, class_name = str(spec["class"]).partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot import {spec['class']!r}: {exc}") from exc
    if not isinstance(cls, type) or not issubclass(cls, BaseCalculator):
        raise ConfigError(f"{where}: {spec['class']!r} is not an ASE calculator class")
    if not isinstance(spec.get("pass_charge", False), bool):
        raise ConfigError(f"{where}: 'pass_charge' must be true or false")
    kwargs = dict(spec.get("kwargs") or {})
    if spec.get("pass_charge", False):
        kwargs.update(charge=0, multiplicity=1)
    try:  # the keyword names, checked against the signature without running any code
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"{where}: kwargs {sorted(kwargs)} do not fit {spec['class']}: {exc}"
        ) from exc
    except ValueError:  # no introspectable signature (e.g. a C extension): created later
        pass
    return cls


def _generic_calculator(spec: dict, charge: int, multiplicity: int) -> BaseCalculator:
    cls = _import_class(spec, "calculator spec")
    kwargs = dict(spec.get("kwargs") or {})
    if spec.get("pass_charge", False):
        kwargs.update(charge=charge, multiplicity=multiplicity)
    try:
        calc = cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"calculator spec: cannot create {spec['class']}: {exc}") from exc
    return calc
