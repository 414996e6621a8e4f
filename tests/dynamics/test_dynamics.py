"""MD stability study: monitor, MD driver, collective variables, MSAD, FES, workflow steps."""

from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.calculator import Calculator, all_changes
from conftest import morse_energy_forces

from deltagdml.data.systems import STRUCTURES
from deltagdml.dynamics.collective import (
    centroid_distance,
    com_distance,
    guest_orientations,
    min_distance,
    msad,
    pincer_groups,
)
from deltagdml.dynamics.fes import common_ranges, free_energy_surface, kt_kcal_mol
from deltagdml.dynamics.run import MDCalculator, StabilityMonitor, run_md
from deltagdml.errors import ConfigError
from deltagdml.gdml.calculator import GDMLCalculator
from deltagdml.gdml.composite import DeltaModel, FragmentTerm
from deltagdml.gdml.model import GDMLModel
from deltagdml.settings import DynamicsSettings, RestraintSettings, StabilitySettings
from deltagdml.workflow.config import dynamics_settings
from deltagdml.workflow.steps.dynamics import load_run, md_analyse, md_summary, save_run

C60_XYZ = STRUCTURES / "c60_buckycatcher.xyz"


class Push(Calculator):
    """Two atoms pushed apart by a constant force f (eV/Å); NaN forces from call ``nan_at``."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, f: float = 0.0, nan_at: int | None = None) -> None:
        super().__init__()
        self.f, self.nan_at, self.calls = f, nan_at, 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions[1] - self.atoms.positions[0]
        u = d / np.linalg.norm(d)
        forces = np.zeros((len(self.atoms), 3))
        forces[0], forces[1] = -self.f * u, self.f * u
        if self.nan_at is not None and self.calls >= self.nan_at:
            forces[:] = np.nan
        self.calls += 1
        self.results = {"energy": -self.f * np.linalg.norm(d), "forces": forces}


def water_dimer() -> tuple[Atoms, list[np.ndarray]]:
    a, b = molecule("H2O"), molecule("H2O")
    b.translate([0.0, 0.0, 3.0])
    return a + b, [np.arange(3), np.arange(3, 6)]


# --- stability monitor ----------------------------------------------------------------


def test_monitor_flags_each_criterion():
    atoms, frags = water_dimer()
    mon = StabilityMonitor(atoms, frags, StabilitySettings(), energy_kcal_mol=-10.0)
    pos, F = atoms.positions.copy(), np.zeros((6, 3))
    assert mon.check(pos, -10.0, F) is None
    assert {tuple(b) for b in mon.bonds} == {(0, 1), (0, 2), (3, 4), (3, 5)}  # no O–H…O

    stretched = pos.copy()
    stretched[4] = pos[3] + 1.49 * (pos[4] - pos[3])
    assert mon.check(stretched, -10.0, F) is None
    stretched[4] = pos[3] + 1.51 * (pos[4] - pos[3])
    assert mon.check(stretched, -10.0, F).startswith("bond stretch: bond 3–4 at 1.51×")

    apart = pos.copy()
    apart[3:] += [0.0, 0.0, 5.1]
    assert mon.check(apart, -10.0, F).startswith("dissociation")
    apart[3:] -= [0.0, 0.0, 0.2]
    assert mon.check(apart, -10.0, F) is None

    clash = pos.copy()
    clash[3:] += pos[1] + [0.3, 0.0, 0.0] - pos[5]  # rigid shift of the second water
    assert mon.check(clash, -10.0, F).startswith("atom clash: atoms 1–5")
    assert mon.check(pos, -10.0 + 6 * 5.1, F).startswith("energy change")
    big = F.copy()
    big[2] = [0.0, 400.0, 400.0]
    assert mon.check(pos, -10.0, big).startswith("force: 566")
    assert mon.check(pos, float("nan"), F).startswith("NaN")


def test_run_stops_at_dissociation_when_predicted():
    # Atoms 0 and 1 are pushed apart along z; atom 2 (fragment 0, no force) stays put. With
    # friction 0 and T ≈ 0 (1e-15 K) velocity Verlet is exact for a constant force: each atom
    # moves by ½ (f/m) t², so the first saved frame past start + margin is known in advance.
    atoms = Atoms("He3", positions=[[0, 0, 0], [0, 0, 3.0], [5.0, 0, 0]])
    frags = [np.array([0, 2]), np.array([1])]
    f, dt, stride, margin = 0.05, 1.0, 5, 2.0
    res = run_md(
        atoms,
        Push(f),
        frags,
        1e-15,
        dt,
        5000,
        stride,
        0.0,
        0,
        StabilitySettings(com_margin_A=margin),
    )
    shift = 0.5 * f / atoms.get_masses()[0] * (np.arange(0, 5001, stride) * dt * units.fs) ** 2
    R = np.repeat(atoms.positions[None], len(shift), axis=0)
    R[:, 0, 2] -= shift
    R[:, 1, 2] += shift
    com = com_distance(R, atoms.get_masses(), frags)
    first = int(np.argmax(com > com[0] + margin))
    assert not res.stable and res.reason.startswith("dissociation")
    assert res.steps_done == first * stride
    assert res.failure_time_ps == pytest.approx(first * stride * dt / 1000)
    np.testing.assert_allclose(res.R, R[: first + 1], atol=1e-6)


def test_run_stops_cleanly_on_nan_and_records_it(tmp_path):
    atoms, frags = water_dimer()
    res = run_md(
        atoms, Push(0.0, nan_at=12), frags, 100.0, 0.5, 1000, 5, 0.01, 1, StabilitySettings()
    )
    # forces are NaN from step 12 on (one calculation per step), so positions from step 13;
    # the run stops at the next saved frame, step 15
    assert res.reason.startswith("NaN") and res.steps_done == 15
    assert res.failure_time_ps == pytest.approx(15 * 0.5 / 1000)
    assert len(res.R) == 4 and np.isfinite(res.R[:3]).all() and np.isnan(res.R[3]).all()
    save_run(res, tmp_path / "run.npz", "full", 100.0, 1000, 7)
    run = load_run(tmp_path / "run.npz")
    assert run["reason"] == res.reason and run["steps_done"] == 15 and run["n_steps"] == 1000
    assert run["model"] == "full" and run["start_index"] == 7
    # another ASE calculator has no model: no uncertainty, and the run file says so
    assert res.uncertainty == {} and np.isnan(res.uncertainty_ratio).all()
    assert run["uncertainty"] == {} and np.isnan(run["left_data_time_ps"])
    assert run["uncertainty_ratio"].shape == (4,) and run["uncertainty_unit"] == ""
    # a run file written before uncertainties were recorded still loads
    with np.load(tmp_path / "run.npz") as f:
        old = {k: f[k] for k in f.files if not k.startswith(("uncertainty", "left_data"))}
    np.savez(tmp_path / "old.npz", **old)
    run = load_run(tmp_path / "old.npz")
    assert run["uncertainty"] == {} and np.isnan(run["uncertainty_ratio"]).all()
    assert np.isnan(run["left_data_time_ps"]) and run["uncertainty_unit"] == ""


# --- collective variables ---------------------------------------------------------------


def test_com_min_and_centroid_distances_on_hand_made_geometry():
    R = np.array([[[0, 0, 0], [2, 0, 0], [0, 0, 5], [0, 0, 7]]], dtype=float)
    masses = np.array([1.0, 3.0, 1.0, 1.0])
    frags = [np.array([0, 1]), np.array([2, 3])]
    # COMs (1.5, 0, 0) and (0, 0, 6)
    assert com_distance(R, masses, frags)[0] == pytest.approx(np.hypot(1.5, 6.0))
    assert min_distance(R, frags[0], frags[1])[0] == pytest.approx(5.0)
    assert centroid_distance(R, frags[0], frags[1])[0] == pytest.approx(np.hypot(1.0, 6.0))


def test_pincer_opening_of_a_hand_made_clamp():
    # two carbon "jaws" at x = ±3 (plus hydrogens, ignored) joined by a 2-carbon hinge
    jaw = np.array([[0.0, 0.0, 0.0], [0.0, 1.4, 0.0], [0.0, 0.7, 1.2], [0.0, 0.7, -1.2]])
    pos = np.vstack([jaw + [-3, 0, 0], jaw + [3, 0, 0], [[-0.7, -2, 0], [0.7, -2, 0]], [[9, 9, 9]]])
    z = np.array([6] * 10 + [1])
    a, b = pincer_groups(pos, z, np.arange(11))
    assert sorted(map(sorted, (a.tolist(), b.tolist()))) == [[0, 1, 2, 3, 8], [4, 5, 6, 7, 9]]
    opened = pos.copy()
    opened[4:8, 0] += 1.0
    # jaw centroids at x = ±(4·3 + 0.7)/5 = ±2.54 Å; opening one jaw by 1 Å moves it 0.8 Å
    assert centroid_distance(pos[None], a, b)[0] == pytest.approx(5.08)
    assert centroid_distance(opened[None], a, b)[0] == pytest.approx(5.88)


def test_pincer_halves_of_the_buckycatcher():
    atoms = ase.io.read(C60_XYZ)
    host = np.arange(60, 148)
    a, b = pincer_groups(atoms.positions, atoms.numbers, host)
    assert len(a) == len(b) == 30 and (atoms.numbers[np.r_[a, b]] == 6).all()
    r_p = centroid_distance(atoms.positions[None], a, b)[0]
    c60 = atoms.positions[:60].mean(axis=0)
    ca, cb = atoms.positions[a].mean(axis=0), atoms.positions[b].mean(axis=0)
    # the C60 sits in the clamp, its centre equally far (≈ 6.3 Å) from both jaw centroids,
    # which lie at an angle: R_p ≈ 7.9 Å in the Grimme geometry
    assert np.linalg.norm(c60 - ca) == pytest.approx(6.28, abs=0.05)
    assert np.linalg.norm(c60 - cb) == pytest.approx(6.28, abs=0.05)
    assert r_p == pytest.approx(7.94, abs=0.05)


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def test_msad_of_rigid_rotation_is_omega_tau_squared():
    rng = np.random.default_rng(0)
    guest0 = rng.normal(size=(5, 3))
    host0 = rng.normal(size=(7, 3)) + [6.0, 0.0, 0.0]
    omega = 0.07  # rad per frame about the guest's own axis
    tumble = 0.05  # the whole complex also tumbles about another axis
    frames = []
    for t in range(40):
        g = (guest0 - guest0.mean(0)) @ rotation(np.array([0.3, 1, 0.2]), omega * t).T
        x = np.vstack([g + guest0.mean(0), host0]) @ rotation(np.array([1, 0, 1]), tumble * t).T
        frames.append(x)
    R = np.array(frames)
    U = guest_orientations(R, np.arange(5), np.arange(5, 12))
    m = msad(U, 30)
    np.testing.assert_allclose(m, (omega * np.arange(31)) ** 2, atol=1e-10)
    # without the host's frame the tumbling adds to the guest's rotation
    lab = msad(guest_orientations(R, np.arange(5), np.arange(0)), 30)
    assert lab[10] > m[10] * 1.2


# --- free-energy surface ----------------------------------------------------------------


def test_fes_recovers_minus_kt_ln_p_of_a_gaussian():
    rng = np.random.default_rng(1)
    sx, sy, T = 0.3, 0.6, 300.0
    x, y = rng.normal(0, sx, 1_000_000), rng.normal(0, sy, 1_000_000)
    bins = 41
    F = free_energy_surface(x, y, T, bins, ((-3 * sx, 3 * sx), (-3 * sy, 3 * sy)))
    cx = np.linspace(-3 * sx, 3 * sx, bins + 1)
    cx, cy = (cx[1:] + cx[:-1]) / 2, (cx[1:] + cx[:-1]) / 2 * sy / sx
    expected = kt_kcal_mol(T) * (cx[:, None] ** 2 / (2 * sx**2) + cy[None] ** 2 / (2 * sy**2))
    inner = (np.abs(cx[:, None]) < sx) & (np.abs(cy[None]) < sy)
    assert np.nanmin(F) == 0.0
    np.testing.assert_allclose(F[inner], expected[inner], atol=0.1 * kt_kcal_mol(T))
    assert kt_kcal_mol(300.0) == pytest.approx(0.596, abs=1e-3)
    # smoothing with a Gaussian of one bin (width h) broadens the variances by h²
    hx, hy = 6 * sx / bins, 6 * sy / bins
    Fs = free_energy_surface(x, y, T, bins, ((-3 * sx, 3 * sx), (-3 * sy, 3 * sy)), 1.0)
    broad = kt_kcal_mol(T) * (
        cx[:, None] ** 2 / (2 * (sx**2 + hx**2)) + cy[None] ** 2 / (2 * (sy**2 + hy**2))
    )
    np.testing.assert_allclose(Fs[inner], broad[inner], atol=0.05 * kt_kcal_mol(T))


def test_smoothed_fes_of_one_sample_reaches_two_widths():
    F = free_energy_surface(np.zeros(1), np.zeros(1), 300.0, 21, ((-1, 1), (-1, 1)), 1.0)
    assert np.nanargmin(F) == np.ravel_multi_index((10, 10), F.shape)
    finite = np.isfinite(F[10])
    assert finite[8:13].all() and not finite[:8].any() and not finite[13:].any()


# --- settings ---------------------------------------------------------------------------


def test_settings_defaults_presets_and_overrides():
    config = {
        "systems": {
            "wb": {"preset": "water_benzene", "dynamics": {"temperatures_K": [50]}},
            "c60": {"preset": "c60_buckycatcher"},
        },
        "dynamics": {"duration_ps": 1.0, "analysis": {"cv2": {"kind": "atoms", "atoms": [0, 1]}}},
    }
    wb, c60 = dynamics_settings(config, "wb"), dynamics_settings(config, "c60")
    assert wb.temperatures_K == (50,) and wb.duration_ps == 1.0
    assert wb.analysis.cv2["kind"] == "atoms" and c60.analysis.cv2["kind"] == "pincer"
    assert c60.temperatures_K == DynamicsSettings().temperatures_K
    plain = {"systems": {"wb": {"preset": "water_benzene"}}}
    assert dynamics_settings(plain, "wb") == DynamicsSettings()
    for bad in ({"models": ["full", "gap"]}, {"duration_ps": 0.001}, {"temperatures_K": []}):
        with pytest.raises(ConfigError):
            dynamics_settings({"systems": config["systems"], "dynamics": bad}, "c60")


# --- a real run with small trained models ----------------------------------------------


def train_dimer_models() -> tuple[Atoms, list[np.ndarray], dict]:
    """Full and Δ models of a Morse 'methane dimer', trained on 40 perturbed geometries."""
    a, b = molecule("CH4"), molecule("CH4")
    b.translate([0.0, 0.0, 3.6])
    atoms = a + b
    frags = [np.arange(5), np.arange(5, 10)]
    rng = np.random.default_rng(0)
    R = atoms.positions[None] + rng.normal(size=(40, 10, 3)) * 0.06
    E, F = morse_energy_forces(R, atoms.positions)
    parts = [morse_energy_forces(R[:, f], atoms.positions[f]) for f in frags]
    full = GDMLModel(sigma=10.0, perms="none").fit(R, atoms.numbers, F, E)
    terms = [
        FragmentTerm(f, GDMLModel(sigma=5.0, perms="none").fit(R[:, f], atoms.numbers[f], *p[::-1]))
        for f, p in zip(frags, parts, strict=True)
    ]
    Fb = F.copy()
    for f, (_, Fk) in zip(frags, parts, strict=True):
        Fb[:, f] -= Fk
    binding = GDMLModel(sigma=10.0, perms="none").fit(
        R, atoms.numbers, Fb, E - parts[0][0] - parts[1][0]
    )
    return atoms, frags, {"full": full, "delta": DeltaModel(atoms.numbers, terms, binding)}


@pytest.fixture(scope="module")
def methane_dimer_models():
    """:func:`train_dimer_models`, without uncertainty thresholds."""
    return train_dimer_models()


def test_trained_models_run_stably_and_deterministically(methane_dimer_models, tmp_path):
    atoms, frags, models = methane_dimer_models
    runs = {}
    for label, model in models.items():
        res = run_md(
            atoms, GDMLCalculator(model), frags, 50.0, 0.5, 60, 10, 0.01, 3, StabilitySettings()
        )
        assert res.stable and res.steps_done == 60 and res.R.shape == (7, 10, 3)
        assert np.isfinite(res.energy_kcal_mol).all() and res.steps_per_s > 0
        runs[label] = res
    # the positions-only cache of MDCalculator changes nothing; another seed does
    settings = (frags, 50.0, 0.5, 60, 10, 0.01)
    again = run_md(atoms, MDCalculator(models["full"]), *settings, 3, StabilitySettings())
    np.testing.assert_array_equal(again.R, runs["full"].R)
    other = run_md(atoms, GDMLCalculator(models["full"]), *settings, 4, StabilitySettings())
    assert np.abs(other.R[-1] - runs["full"].R[-1]).max() > 1e-4
    # both models describe the same potential closely: same starting forces
    f_full = models["full"].predict(atoms.positions[None])[1]
    f_delta = models["delta"].predict(atoms.positions[None])[1]
    assert np.abs(f_full - f_delta).max() < 2.0


@pytest.fixture(scope="module")
def calibrated_models():
    """:func:`train_dimer_models` with uncertainty thresholds: 1.5 × the largest GP energy
    std over 20 validation geometries like the training ones."""
    atoms, frags, models = train_dimer_models()
    rng = np.random.default_rng(1)
    R_valid = atoms.positions[None] + rng.normal(size=(20, 10, 3)) * 0.06
    models["full"].calibrate_uncertainty(R_valid, factor=1.5)
    for term in models["delta"].fragments:
        term.model.calibrate_uncertainty(R_valid[:, term.atoms], factor=1.5)
    models["delta"].binding.calibrate_uncertainty(R_valid, factor=1.5)
    return atoms, frags, models


def test_a_run_that_leaves_its_data_stops_and_names_the_part(calibrated_models, tmp_path):
    """At 1000 K the dimer leaves the 0.06 Å cloud it was trained on within a few frames; with
    ``max_uncertainty_ratio=1`` the run stops there and names the part furthest above its
    threshold. At 10 K, same models and seed, it stays in its data and runs to the end."""
    atoms, frags, models = calibrated_models
    limit = StabilitySettings(max_uncertainty_ratio=1.0)
    parts = {"full": {"model"}, "delta": {"fragment_0", "fragment_1", "binding"}}
    for label, model in models.items():
        cold = run_md(atoms, MDCalculator(model), frags, 10.0, 0.5, 100, 10, 0.01, 3, limit)
        assert cold.stable and cold.steps_done == 100 and np.isnan(cold.left_data_time_ps)
        assert set(cold.uncertainty) == parts[label] and cold.uncertainty_unit == "kcal/mol"
        assert (cold.uncertainty_ratio < 1).all() and cold.uncertainty_ratio.shape == (11,)
        for part, std in cold.uncertainty.items():
            assert std.shape == (11,) and (std > 0).all(), part
        hot = run_md(atoms, MDCalculator(model), frags, 1000.0, 0.5, 100, 10, 0.01, 3, limit)
        assert hot.reason.startswith("uncertainty: ") and hot.reason.endswith("(limit 1×)")
        thresholds = {
            p: m.uncertainty_threshold_
            for p, m in (model.parts() if label == "delta" else {"model": model}).items()
        }
        ratios = {p: hot.uncertainty[p][-1] / t for p, t in thresholds.items()}
        worst = max(ratios, key=ratios.get)
        assert hot.reason.startswith(f"uncertainty: {worst} at {ratios[worst]:.2f}×")
        assert ratios[worst] > 1 and hot.uncertainty_ratio[-1] == pytest.approx(ratios[worst])
        assert (hot.uncertainty_ratio[:-1] <= 1).all()  # stopped at the first frame above
        assert hot.failure_time_ps == hot.left_data_time_ps == hot.time_ps[-1] > 0
        assert hot.steps_done < 100
        # without the limit the same run goes on, and records when it left its data
        free = run_md(
            atoms, MDCalculator(model), frags, 1000.0, 0.5, 100, 10, 0.01, 3, StabilitySettings()
        )
        assert free.steps_done > hot.steps_done and not (free.reason or "").startswith("unc")
        assert free.left_data_time_ps == hot.left_data_time_ps
        np.testing.assert_allclose(free.uncertainty_ratio[: len(hot.R)], hot.uncertainty_ratio)
    save_run(hot, tmp_path / "run.npz", "delta", 1000.0, 100, 0)
    run = load_run(tmp_path / "run.npz")
    assert set(run["uncertainty"]) == parts["delta"] and run["uncertainty_unit"] == "kcal/mol"
    for part, std in hot.uncertainty.items():
        np.testing.assert_array_equal(run["uncertainty"][part], std)
    np.testing.assert_array_equal(run["uncertainty_ratio"], hot.uncertainty_ratio)
    assert run["left_data_time_ps"] == hot.left_data_time_ps
    # the recorded values are the models' own at the saved frames
    np.testing.assert_allclose(
        run["uncertainty"]["binding"], models["delta"].binding.predict_std(hot.R), rtol=1e-5
    )


def test_without_thresholds_the_uncertainty_is_recorded_but_never_stops_a_run(
    methane_dimer_models,
):
    """Models without calibrated thresholds (files written before them): values recorded,
    ratio NaN, and ``max_uncertainty_ratio`` never stops the run."""
    atoms, frags, models = methane_dimer_models
    limit = StabilitySettings(max_uncertainty_ratio=1.0)
    res = run_md(atoms, MDCalculator(models["delta"]), frags, 1000.0, 0.5, 60, 10, 0.01, 3, limit)
    assert not (res.reason or "").startswith("uncertainty")
    assert set(res.uncertainty) == {"fragment_0", "fragment_1", "binding"}
    assert all(np.isfinite(std).all() and (std > 0).all() for std in res.uncertainty.values())
    assert np.isnan(res.uncertainty_ratio).all() and np.isnan(res.left_data_time_ps)


def test_analyse_and_summarise_write_tables_and_figures(
    methane_dimer_models, calibrated_models, tmp_path, monkeypatch
):
    """Four runs: the full model without thresholds (10 K; a NaN at 50 K), the calibrated Δ
    model at 10 K (in its data) and at 1000 K (leaves it, then breaks a bond)."""
    atoms, frags, models = methane_dimer_models
    delta = calibrated_models[2]["delta"]
    monkeypatch.chdir(tmp_path)
    ase.io.write("dimer.xyz", atoms)
    config = {
        "systems": {"dimer": {"structure": "dimer.xyz", "fragments": [f.tolist() for f in frags]}},
        "dynamics": {"analysis": {"equilibration_ps": 0.0, "fes_bins": 8}},
    }
    calcs = {
        ("full", 10.0): GDMLCalculator(models["full"]),
        ("full", 50.0): Push(0.0, nan_at=20),
        ("delta", 10.0): GDMLCalculator(delta),
        ("delta", 1000.0): GDMLCalculator(delta),
    }
    paths = []
    for (label, T), calc in calcs.items():
        res = run_md(atoms, calc, frags, T, 0.5, 80, 4, 0.01, 0, StabilitySettings())
        paths.append(f"{label}_{T:g}K.npz")
        save_run(res, paths[-1], label, T, 80, 0)
    hot = load_run("delta_1000K.npz")
    left = hot["left_data_time_ps"]
    assert hot["reason"].startswith("bond stretch") and 0 < left < hot["failure_time_ps"]
    out = {k: f"{k}.{ext}" for k, ext in (("stability", "csv"), ("msad", "csv"), ("fes", "npz"))}
    out.update(
        {f"{k}_{e}": f"{k}.{e}" for k in ("fes", "msad", "uncertainty") for e in ("png", "pdf")}
    )
    md_analyse(config=config, system="dimer", label="dimer", runs=paths, **out)
    table = pd.read_csv("stability.csv", keep_default_na=False)
    assert len(table) == 4
    bad = table[table["status"] == "unstable"]
    assert bad[["model", "temperature_K"]].values.tolist() == [["full", 50.0], ["delta", 1000.0]]
    assert float(bad["failure_time_ps"].iloc[0]) == pytest.approx(0.01)  # step 20
    data = table.set_index(["model", "temperature_K"])
    assert float(data.loc[("delta", 1000.0), "left_data_time_ps"]) == pytest.approx(left)
    assert float(data.loc[("delta", 1000.0), "max_uncertainty_ratio"]) > 1
    assert data.loc[("delta", 10.0), "left_data_time_ps"] == ""  # never left: NaN
    assert 0 < float(data.loc[("delta", 10.0), "max_uncertainty_ratio"]) < 1
    assert (data.loc["full", ["left_data_time_ps", "max_uncertainty_ratio"]] == "").all(axis=None)
    curves = pd.read_csv("msad.csv")
    assert set(curves["model"]) == {"full", "delta"} and (curves["msad_rad2"] >= 0).all()
    fes = np.load("fes.npz")
    assert fes["F_kcal_mol"].shape == (4, 8, 8) and np.nanmin(fes["F_kcal_mol"][0]) == 0.0
    timing = pd.DataFrame({"system": "dimer", "n_atoms": 10, "model": ["full", "full", "delta"]})
    timing.assign(temperature_K=[10, 50, 10], steps_per_s=[100, 300, 50]).to_csv("t.csv")
    summary = {k: f"sum.{k}" for k in ("csv", "md", "png", "pdf")} | {"speed": "speed.csv"}
    md_summary(stability=["stability.csv"], timing=["t.csv"], names={"dimer": "AB"}, **summary)
    md = Path("sum.md").read_text()
    assert "| dimer | full | stable" in md and "**0.010 ps**: NaN" in md
    failed = f"**{hot['failure_time_ps']:.3f} ps**: {hot['reason']}; left data at {left:.2f} ps |"
    assert failed in md and md.count("left data at") == 1
    summed = pd.read_csv("sum.csv").set_index(["model", "temperature_K"])
    assert summed.loc[("delta", 1000.0), "left_data_time_ps"] == pytest.approx(left)
    speed = pd.read_csv("speed.csv").set_index("model")["steps_per_s"]
    assert speed.to_dict() == {"full": 200, "delta": 50}  # medians over temperatures
    for path in [*out.values(), *summary.values()]:
        assert Path(path).stat().st_size > 0


def test_start_geometry_median_or_lowest_energy():
    from deltagdml.workflow.steps.dynamics import start_index

    E = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 0.5])
    train = np.array([0, 2, 3, 4, 5])  # energies 5, 9, 3, 7, 0.5 → median 5 (index 0)
    assert start_index(E, train) == 0
    assert start_index(E, train, "lowest_energy") == 5
    assert start_index(None, train, "lowest_energy") == 0
    config = {"systems": {"w": {"preset": "water_benzene"}}, "dynamics": {"start": "hottest"}}
    with pytest.raises(ConfigError, match="start must be one of"):
        dynamics_settings(config, "w")


def test_a_restraint_moves_the_atoms_but_is_left_out_of_the_recorded_energy(
    methane_dimer_models,
):
    """With the COM restraint on, the stored energies and forces (and the stability checks)
    are the model's (forces with the fixed centre of mass projected out, as the integrator
    applies them); the restraint still acts on the dynamics."""
    atoms, frags, models = methane_dimer_models
    model = models["full"]
    args = (frags, 50.0, 0.5, 40, 10, 0.01, 3, StabilitySettings())
    tight = RestraintSettings(enabled=True, r0=2.5, k=0.5)  # r0 < COM distance: active
    held = run_md(atoms, MDCalculator(model), *args, restraint=tight)
    free = run_md(atoms, MDCalculator(model), *args)
    E, F = model.predict(held.R)
    m = atoms.get_masses()
    F -= m[None, :, None] * (np.einsum("i,fij->fj", m, F) / (m @ m))[:, None, :]  # fixed COM
    np.testing.assert_allclose(held.energy_kcal_mol, E, rtol=0, atol=1e-6)
    np.testing.assert_allclose(held.forces_kcal_mol_A, F, rtol=0, atol=1e-6)
    assert held.steps_done == 40
    assert not np.allclose(held.R[-1], free.R[-1])  # the restraint did act


def test_fes_ranges_keep_every_runs_basin_whole():
    """A long cold run and a short hot one: the shared range covers the hot run's own
    0.5–99.5 % quantiles (pooled quantiles would cut its basin at ~1.4), and one far frame
    of a run does not stretch it."""
    rng = np.random.default_rng(0)
    cold = rng.normal(0.0, 0.2, 20_000)
    hot = rng.normal(0.0, 1.0, 400)
    far = np.append(rng.normal(0.0, 0.2, 1_000), 50.0)
    (lo, hi), (ylo, yhi) = common_ranges([cold, hot, far], [cold, hot, far], pad=0.0)
    q = np.quantile(hot, [0.005, 0.995])
    assert lo <= q[0] and hi >= q[1] and hi < 5.0
    assert np.quantile(np.concatenate([cold, hot, far]), 0.995) < 0.8 * q[1]
    assert (ylo, yhi) == (lo, hi)
    assert common_ranges([np.array([np.nan])], [np.array([])]) == ((-0.05, 1.05),) * 2
