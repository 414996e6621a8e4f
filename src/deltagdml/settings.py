"""Settings of every stage, with their defaults: one home for both.

Frozen dataclasses, built once from a validated config by :mod:`deltagdml.workflow.config`
and taken by the libraries; the command-line interface draws its defaults from here too.
``tests/workflow/test_settings.py`` checks that the config schema's defaults and ``config.yaml``
agree with these. Units: K, fs, ps, Å, kcal/mol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RestraintSettings:
    """Flat-bottom restraint on the fragments' centre-of-mass distance:
    E = ½ k (r − r0)² beyond r0 (k in eV/Å²; r0 in Å, None: the start distance + 1 Å)."""

    enabled: bool = True
    k: float = 1.0
    r0: float | None = None


@dataclass(frozen=True)
class CalculatorSettings:
    """An ASE calculator named in the config (``reference``, ``sampling.calculator``).

    ``name``: ``tblite`` (options: the fields of :class:`TBLiteSettings`), ``gfnff`` (no
    options) or ``ase`` (options ``class`` 'module:Class', ``kwargs``, ``pass_charge``).
    """

    name: str = "tblite"
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, spec: Mapping[str, Any] | None) -> CalculatorSettings:
        """The settings of a config value ``{name: ..., **options}``; None: GFN2-xTB."""
        options = dict(spec or {})
        return cls(name=options.pop("name", "tblite"), options=options)

    def as_config(self) -> dict[str, Any]:
        """The config value these settings come from."""
        return {"name": self.name, **self.options}


@dataclass(frozen=True)
class TBLiteSettings:
    """GFN-xTB through tblite, the default reference method (``reference: {name: tblite}``).

    Accuracy 0.1 tightens the SCF so that forces match finite differences of the energy to
    ~1e-4 kcal/mol/Å (about 15 % more time than 1.0); electronic temperature in K.
    """

    method: str = "GFN2-xTB"
    accuracy: float = 0.1
    electronic_temperature: float = 300.0
    max_iterations: int = 250


@dataclass(frozen=True)
class SamplingSettings:
    """Langevin MD that samples the geometries to label (``sampling`` section)."""

    #: the sampler; None: the reference method
    calculator: CalculatorSettings | None = None
    temperatures_K: tuple[float, ...] = (300.0,)
    timestep_fs: float = 0.5
    n_frames: int = 400
    #: frames saved per replica; None: n_frames shared evenly over the replicas
    frames_per_replica: int | None = None
    selection: str = "time"
    stride: int = 10
    equilibration_steps: int = 200
    friction_per_fs: float = 0.01
    restraint: RestraintSettings = RestraintSettings()


@dataclass(frozen=True)
class TrainingSettings:
    """Training of one sGDML model (``training`` section, or one entry of ``training.parts``)."""

    n_train: int = 100
    n_valid: int = 50
    n_test: int = 200
    sigmas: tuple[float, ...] = (2, 5, 10, 20, 40, 80, 160)
    #: 'bracket' (from the median-distance start downhill to a bracketed minimum), 'grid'
    #: (every σ, ascending) or 'coarse_to_fine' (every second σ, then the best's neighbours)
    sigma_search: str = "bracket"
    #: follow a best σ at either end of the grid outwards until the validation error rises
    extend_sigmas: bool = True
    #: search σ on a nested random subset of this many training geometries, then fit the
    #: chosen σ once on all; None: search on all
    sigma_subset: int | None = None
    lam: float = 1e-10
    #: 'auto', 'none' or a .npy file of permutations
    symmetries: str = "auto"
    max_perms: int = 2048
    patience: int = 2
    #: 'auto', 'analytic' or 'iterative'
    solver: str = "auto"
    max_memory_gb: float = 16
    solver_tol: float = 1e-4
    #: start CG at each σ from the nearest σ's solution (fewer iterations only for σ close
    #: together: 58 → 37 at 12 from 10, 45 → 49 at 20 from 10 on water–benzene)
    cg_warm_start: bool = False


@dataclass(frozen=True)
class UncertaintySettings:
    """Predictive uncertainty of every model and its threshold (``uncertainty`` section).

    The threshold of each model (each part of a Δ model) is ``factor`` × the ``quantile``
    of its uncertainty over its validation geometries, stored in the model file; a frame
    above it has left the model's data.
    """

    #: 'gp' (GP posterior energy std, kcal/mol) or 'nearest' (distance to the nearest
    #: training geometry in descriptor space, in σ)
    method: str = "gp"
    quantile: float = 1.0
    factor: float = 1.5
    #: largest order (3N + 1)·m of the GP system: m inducing geometries are capped to fit
    max_size: int = 1500


@dataclass(frozen=True)
class StabilitySettings:
    """When an MD run counts as broken (``dynamics.stability``)."""

    bond_stretch: float = 1.5
    min_distance_A: float = 0.5
    com_margin_A: float = 5.0
    max_energy_change_kcal_mol_per_atom: float = 5.0
    max_force_kcal_mol_A: float = 500.0
    #: stop when a part's uncertainty exceeds this multiple of its calibrated threshold
    #: (checked at every saved frame); None: never stop for it, only record it
    max_uncertainty_ratio: float | None = None


@dataclass(frozen=True)
class TrajectoryAnalysisSettings:
    """Free-energy surfaces and rotational MSAD of MD runs (``dynamics.analysis``)."""

    equilibration_ps: float = 0.25
    fes_bins: int = 25
    fes_smoothing_bins: float = 1.0
    msad_max_lag_fraction: float = 0.5
    #: fragment index of the guest, or 'auto' (the smaller fragment)
    guest_fragment: int | str = "auto"
    #: second collective variable: {kind: min_distance | atoms | centroids | pincer, ...}
    cv2: Mapping[str, Any] = field(default_factory=lambda: {"kind": "min_distance"})


@dataclass(frozen=True)
class DynamicsSettings:
    """The MD stability study of the full and Δ models (``dynamics`` section)."""

    #: False: no MD study for this system (e.g. a training-size study)
    enabled: bool = True
    temperatures_K: tuple[float, ...] = (10, 100, 200, 300, 400)
    models: tuple[str, ...] = ("full", "delta")
    timestep_fs: float = 0.5
    duration_ps: float = 5.0
    stride: int = 10
    friction_per_fs: float = 0.01
    #: start geometry: the training geometry of 'median_energy' or 'lowest_energy'
    start: str = "median_energy"
    restraint: RestraintSettings = RestraintSettings(enabled=False)
    stability: StabilitySettings = StabilitySettings()
    analysis: TrajectoryAnalysisSettings = TrajectoryAnalysisSettings()

    @property
    def n_steps(self) -> int:
        """MD steps of one run."""
        return int(round(1000.0 * self.duration_ps / self.timestep_fs))


@dataclass(frozen=True)
class ActiveLearningSettings:
    """Rounds that label where the Δ model's own MD leaves its data (``active_learning``).

    Round r ≥ 1 runs short MD with the Δ model of round r − 1 from ``n_starts`` training
    geometries per temperature; a run stops where a part's uncertainty exceeds
    ``stop_ratio`` × its threshold, or where it breaks a stability criterion. If every run
    stays stable and under ``accept_ratio`` × the thresholds, the loop ends; otherwise the
    saved frames above that and the ``pre_failure_frames`` saved frames before any failure are
    collected, at most ``budget`` of them are chosen by farthest-point sampling in
    descriptor space, labelled with the reference method and added to the training pool of
    the parts that triggered (a frame before a failure with no part above its threshold:
    every learned part).
    """

    enabled: bool = False
    max_rounds: int = 3
    #: None: the temperatures of the MD study (``dynamics.temperatures_K``)
    temperatures_K: tuple[float, ...] | None = None
    n_starts: int = 2
    duration_ps: float = 2.0
    timestep_fs: float = 0.5
    stride: int = 10
    friction_per_fs: float = 0.01
    budget: int = 20
    stop_ratio: float = 2.0
    #: a round with every part under this × its threshold (and no failure) ends the loop;
    #: frames above it are labelled (1: the calibrated threshold itself)
    accept_ratio: float = 1.0
    pre_failure_frames: int = 3
    #: frames of the final Δ model's MD study, relabelled as a second test set (0: none)
    md_test_frames: int = 50

    @property
    def n_steps(self) -> int:
        """MD steps of one exploration run."""
        return int(round(1000.0 * self.duration_ps / self.timestep_fs))


@dataclass(frozen=True)
class AnalysisSettings:
    """The paper's analyses (``analysis`` section)."""

    #: random frame pairs for the per-entry standard deviations of ΔD (Fig. 3C)
    descriptor_frame_pairs: int = 1000
    #: the two frames [t1, t2] of Fig. 3A/B; None: first and last frame
    descriptor_frames: tuple[int, int] | None = None
    #: per system {first: [a, b], second: [a, b], inter: [a, b]}: entries shown in Fig. 3A
    descriptor_entries: Mapping[str, Any] = field(default_factory=dict)
    #: factor on the binding forces in Fig. 1; None: chosen automatically
    force_amplification: float | None = None
    #: training-set sizes of the learning curves (sizes above a system's n_train are dropped)
    learning_curve_sizes: tuple[int, ...] = (25, 50, 100)


def defaults(cls: type) -> dict[str, Any]:
    """The defaults of settings class ``cls`` as a nested dict (lists for tuples)."""
    return _plain(dataclasses.asdict(cls()))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """Settings ``cls`` from a merged config section; nested sections become their classes.

    Unknown keys raise ``TypeError`` (the schema refuses them first)."""
    kwargs: dict[str, Any] = {}
    hints = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        default = hints[key].default if key in hints else None
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            value = build(type(default), value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
