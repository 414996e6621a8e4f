"""Paper analyses: the numbers behind Fig. 1, 3, 5 and the learning curves, on known cases."""

import numpy as np
import pandas as pd
import pytest
from ase.build import molecule
from ase.units import Bohr
from conftest import morse_energy_forces
from matplotlib.text import Text

from deltagdml.analysis import binding_stats as bs
from deltagdml.analysis import descriptor_variance as dv
from deltagdml.analysis import figures
from deltagdml.analysis import force_decomposition as fd
from deltagdml.analysis import learning_curves as lc
from deltagdml.errors import ConfigError, DatasetError
from deltagdml.gdml.dataset import Dataset, save_dataset
from deltagdml.gdml.descriptor import descriptor, pair_indices
from deltagdml.settings import AnalysisSettings, TrainingSettings
from deltagdml.workflow.checks import check_analysis, check_config
from deltagdml.workflow.config import analysis_settings, learning_curve_sizes, load_system
from deltagdml.workflow.steps import analysis as steps

TWO_FRAGMENTS = [np.array([0, 1, 2]), np.array([3, 4])]


def rigid_pair_moving_apart(n_frames: int = 12) -> np.ndarray:
    """Fragment 1 translated along x; dyadic coordinates keep intra distances bit-exact."""
    base = np.array(
        [[0.0, 0.0, 0.0], [1.0, 0.25, 0.0], [-0.5, 0.75, 0.25], [3.0, 0.5, 0.0], [3.75, 0.0, 0.5]]
    )
    R = np.repeat(base[None], n_frames, axis=0)
    R[:, 3:, 0] += 0.25 * np.arange(n_frames)[:, None]
    return R


# -- descriptors -------------------------------------------------------------------------
def test_inverse_distance_matrix_is_the_kernel_descriptor():
    R = np.random.default_rng(0).normal(size=(3, 5, 3))
    D = dv.inverse_distance_matrix(R)
    a, b = pair_indices(5)
    np.testing.assert_allclose(D[:, a, b], descriptor(R))
    np.testing.assert_allclose(D, D.transpose(0, 2, 1))
    assert np.all(np.diagonal(D, axis1=1, axis2=2) == 0)


def test_coulomb_matrix_by_hand():
    # O at the origin, H at 2 bohr along z, H at 1 bohr along x (atomic units)
    R = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]]) * Bohr
    C = dv.coulomb_matrix(R, np.array([8, 1, 1]))
    expected = np.array(
        [
            [0.5 * 8**2.4, 8 / 2, 8 / 1],
            [8 / 2, 0.5, 1 / np.sqrt(5)],
            [8 / 1, 1 / np.sqrt(5), 0.5],
        ]
    )
    np.testing.assert_allclose(C, expected, rtol=1e-12)


def test_frobenius_decomposition_sums_to_the_squared_norm():
    rng = np.random.default_rng(1)
    fragments = [np.array([0, 4]), np.array([1, 2, 5]), np.array([3])]
    R = rng.normal(size=(2, 6, 3)) * 2
    for matrices in dv.DESCRIPTORS.values():
        D = matrices(R, np.array([6, 1, 1, 8, 1, 7]))
        dD = D[0] - D[1]
        terms = dv.frobenius_decomposition(dD, fragments)
        assert terms["total"] == pytest.approx(np.linalg.norm(dD) ** 2, rel=1e-12)
        parts = terms["intra_0"] + terms["intra_1"] + terms["intra_2"] + terms["inter"]
        assert parts == pytest.approx(terms["total"], rel=1e-12)
        # the intra block of fragment 0 is the two entries (0, 4), (4, 0) (diagonal ΔD = 0)
        assert terms["intra_0"] == pytest.approx(2 * dD[0, 4] ** 2, rel=1e-12)


def test_rigid_fragments_moving_apart_vary_only_inter_entries():
    R = rigid_pair_moving_apart()
    z = np.array([6, 1, 1, 8, 1])
    entries = dv.select_entries(R, z, TWO_FRAGMENTS)
    pairs = dv.random_frame_pairs(len(R), 200, seed=3)
    for name, matrices in dv.DESCRIPTORS.items():
        res = dv.descriptor_variance(
            matrices(R, z), name, TWO_FRAGMENTS, entries, (0, len(R) - 1), pairs
        )
        assert res.decomposition["intra_0"] == 0.0 and res.decomposition["intra_1"] == 0.0
        assert res.decomposition["inter"] == res.decomposition["total"] > 0
        assert res.inter_fraction == 1.0
        intra, inter = dv.entry_masks(TWO_FRAGMENTS, 5)
        assert np.all(res.std_dD[intra] == 0) and np.all(res.std_dD[inter] > 0)
        for std in (res.std_dD, res.std_dD2):
            mean_inter, mean_intra, ratio = dv.variance_ratio(std, TWO_FRAGMENTS)
            assert mean_intra == 0.0 and mean_inter > 0 and ratio == np.inf
        # time series: intra entries constant, the inter entry decreasing (1/r, moving apart)
        assert np.all(np.ptp(res.series[:, :2], axis=0) == 0)
        assert np.all(np.diff(res.series[:, 2]) < 0)


def test_variance_ratio_definition():
    # fragments {0, 1} and {2}: intra entries (0,1),(1,0); inter (0,2),(2,0),(1,2),(2,1)
    std = np.array([[9.0, 4.0, 1.0], [4.0, 9.0, 3.0], [1.0, 3.0, 9.0]])
    mean_inter, mean_intra, ratio = dv.variance_ratio(std, [np.array([0, 1]), np.array([2])])
    assert (mean_inter, mean_intra, ratio) == (2.0, 4.0, 0.5)  # diagonal ignored
    _, mean_intra, ratio = dv.variance_ratio(std, [np.array([0]), np.array([1]), np.array([2])])
    assert np.isnan(mean_intra) and np.isnan(ratio)


def test_random_frame_pairs_are_distinct_and_seeded():
    pairs = dv.random_frame_pairs(5, 500, seed=7)
    assert pairs.shape == (500, 2) and np.all(pairs[:, 0] != pairs[:, 1])
    assert pairs.min() == 0 and pairs.max() == 4
    np.testing.assert_array_equal(pairs, dv.random_frame_pairs(5, 500, seed=7))
    with pytest.raises(DatasetError):
        dv.random_frame_pairs(1, 10, seed=0)


def test_entries_chosen_automatically_and_overridden():
    a, b = molecule("CH4"), molecule("H2O")
    b.translate([0.0, 0.0, 3.5])
    R = np.concatenate([a.positions, b.positions])[None]
    z = np.concatenate([a.numbers, b.numbers])
    fragments = [np.arange(5), np.arange(5, 8)]
    first, second, inter = dv.select_entries(R, z, fragments)
    assert {z[first.a], z[first.b]} == {6, 1}
    assert {z[second.a], z[second.b]} == {8, 1}
    d = np.linalg.norm(R[0][:, None] - R[0][None], axis=2)
    assert d[inter.a, inter.b] == pytest.approx(d[np.ix_(fragments[0], fragments[1])].min())
    entries = dv.select_entries(R, z, fragments, {"inter": [0, 5]})
    assert (entries[2].a, entries[2].b, entries[2].note) == (5, 0, "configured")
    with pytest.raises(ConfigError, match="different fragments"):
        dv.select_entries(R, z, fragments, {"inter": [0, 1]})
    with pytest.raises(ConfigError, match="same fragment"):
        dv.select_entries(R, z, fragments, {"first": [0, 5]})


def test_single_atom_fragment_uses_a_second_pair_of_fragment_0():
    benzene = molecule("C6H6")
    R = np.concatenate([benzene.positions, [[0.0, 0.0, 2.4]]])[None]
    z = np.concatenate([benzene.numbers, [11]])
    first, second, inter = dv.select_entries(R, z, [np.arange(12), np.array([12])])
    assert {z[first.a], z[first.b]} == {6, 1}  # C–H is the shortest bond
    assert {z[second.a], z[second.b]} == {6} and "only fragment 0" in second.note
    assert 12 in (inter.a, inter.b)


# -- binding statistics ------------------------------------------------------------------
def test_describe_known_values():
    stats = bs.describe(np.array([5.0, 1.0, 4.0, 2.0, 3.0]))
    assert stats == {
        "n": 5,
        "mean": 3.0,
        "std": pytest.approx(np.sqrt(2.5)),
        "min": 1.0,
        "q1": 2.0,
        "median": 3.0,
        "q3": 4.0,
        "max": 5.0,
    }
    assert bs.describe(np.array([0.0, 10.0]))["q1"] == 2.5  # linear interpolation


def test_binding_values_and_table():
    F = np.zeros((2, 2, 3))
    F[0, 0] = [3.0, 4.0, 0.0]
    F[1, 1] = [0.0, 0.0, -2.0]
    ds = Dataset(np.random.default_rng(0).normal(size=(2, 2, 3)), [1, 1], F, [-1.0, -3.0])
    values = bs.binding_values(ds)
    np.testing.assert_allclose(values["binding_force_magnitude"], [5.0, 0.0, 0.0, 2.0])
    table = bs.statistics_table({"dimer": values}).set_index("quantity")
    assert table.loc["binding_energy", "mean"] == -2.0
    assert table.loc["binding_force_magnitude", "max"] == 5.0
    assert table.loc["binding_force_magnitude", "unit"] == "kcal/mol/Ang"


# -- force decomposition -----------------------------------------------------------------
def test_representative_frame_is_closest_to_median():
    assert fd.representative_frame(np.array([5.0, 1.0, 3.0, 10.0, 2.0])) == 2
    assert fd.representative_frame(np.array([1.0, 3.0])) == 0  # tie: first


@pytest.mark.parametrize(
    "x, expected", [(0.7, 0.5), (1.0, 1.0), (3.2, 2.0), (9.99, 5.0), (10.0, 10.0), (0.05, 0.05)]
)
def test_nice_floor(x, expected):
    assert fd.nice_floor(x) == pytest.approx(expected)


def test_decomposition_of_selected_frame_and_amplification():
    rng = np.random.default_rng(2)
    R = rng.normal(size=(5, 5, 3)) * 2
    F0 = rng.normal(size=(5, 5, 3)) * 10
    Fb = rng.normal(size=(5, 5, 3)) * 0.1
    E_b = np.array([-1.0, -4.0, -2.0, -3.0, -5.0])
    dec = fd.decompose(R, F0 + Fb, F0, Fb, E_b)
    assert dec.frame == 3 and dec.binding_energy == -3.0  # the median
    np.testing.assert_allclose(dec.F, dec.F0 + dec.Fb, atol=1e-12)
    ratio = np.linalg.norm(dec.F, axis=1).max() / np.linalg.norm(dec.Fb, axis=1).max()
    assert dec.amplification == fd.nice_floor(ratio)
    assert ratio / 2.5 < dec.amplification <= ratio
    assert fd.decompose(R, F0 + Fb, F0, Fb, E_b, amplification=7.0).amplification == 7.0
    with pytest.raises(DatasetError, match="F0 \\+ F_b"):
        fd.decompose(R, F0 + 2 * Fb, F0, Fb, E_b)
    # the view is a rotation; y is the fragment axis tilted by VIEW_TILT_DEG
    basis = fd.view_basis(R[3], TWO_FRAGMENTS)
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-12)
    axis = R[3, 3:].mean(axis=0) - R[3, :3].mean(axis=0)
    cos = basis[1] @ axis / np.linalg.norm(axis)
    assert cos == pytest.approx(np.cos(np.deg2rad(fd.VIEW_TILT_DEG)))
    view = dec.in_view(TWO_FRAGMENTS)
    np.testing.assert_allclose(np.linalg.norm(view["F"], axis=1), np.linalg.norm(dec.F, axis=1))


# -- learning curves ---------------------------------------------------------------------
def test_loglog_slope_recovers_power_law():
    n = np.array([25, 50, 100, 200])
    slope, intercept = lc.loglog_fit(n, 3.0 * n**-0.45)
    assert slope == pytest.approx(-0.45) and intercept == pytest.approx(np.log10(3.0))
    assert np.isnan(lc.loglog_fit(np.array([10]), np.array([1.0]))[0])


def test_nested_subsets():
    train = np.arange(100, 140)
    subsets = lc.nested_subsets(train, [5, 10, 40], seed=0)
    assert set(subsets[5]) < set(subsets[10]) < set(subsets[40]) == set(train)
    assert not np.array_equal(subsets[5], train[:5])  # random, not the first frames
    np.testing.assert_array_equal(subsets[10], lc.nested_subsets(train, [10], seed=0)[10])


def exp_pair(R: np.ndarray, frags: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Weak inter-fragment pair term E_b = Σ 2 exp(−r_ab) (kcal/mol) and its forces."""
    diff = R[:, frags[0], None] - R[:, None, frags[1]]  # r_a − r_b, (M, n0, n1, 3)
    r = np.linalg.norm(diff, axis=3)
    pair = (2.0 * np.exp(-r) / r)[..., None] * diff  # force on a from b
    return (2.0 * np.exp(-r)).sum(axis=(1, 2)), np.concatenate(
        [pair.sum(axis=2), -pair.sum(axis=1)], axis=1
    )


def water_dimer_data(n: int, seed: int = 0) -> tuple[dict[str, Dataset], list[np.ndarray]]:
    """Two Morse waters 3 Å apart, bound by :func:`exp_pair`."""
    water = molecule("H2O")
    R_ref = np.concatenate([water.positions, water.positions + [3.0, 0.0, 0.0]])
    z = np.concatenate([water.numbers, water.numbers])
    frags = [np.arange(3), np.arange(3, 6)]
    rng = np.random.default_rng(seed)
    R = R_ref + rng.normal(size=(n, 6, 3)) * 0.06
    R[:, 3:, 0] += rng.uniform(-0.3, 0.3, size=(n, 1))
    parts = [morse_energy_forces(R[:, f], R_ref[f]) for f in frags]
    E_b, F_b = exp_pair(R, frags)
    F0 = np.concatenate([parts[0][1], parts[1][1]], axis=1)
    datasets = {
        "full": Dataset(R, z, F0 + F_b, parts[0][0] + parts[1][0] + E_b),
        "fragment_0": Dataset(R[:, frags[0]], z[frags[0]], parts[0][1], parts[0][0]),
        "fragment_1": Dataset(R[:, frags[1]], z[frags[1]], parts[1][1], parts[1][0]),
        "binding": Dataset(R, z, F_b, E_b),
    }
    return datasets, frags


def test_synthetic_binding_forces_are_minus_the_energy_gradient():
    R = water_dimer_data(1)[0]["binding"].R
    frags = [np.arange(3), np.arange(3, 6)]
    _, F = exp_pair(R, frags)
    h, grad = 1e-5, np.zeros_like(R)
    for i in range(6):
        for c in range(3):
            step = np.zeros_like(R)
            step[0, i, c] = h
            grad[0, i, c] = (exp_pair(R + step, frags)[0] - exp_pair(R - step, frags)[0])[0] / (
                2 * h
            )
    np.testing.assert_allclose(F, -grad, atol=1e-7)


def test_learning_curve_errors_decrease_with_training_size():
    datasets, frags = water_dimer_data(150)
    splits = {"train": np.arange(0, 80), "valid": np.arange(80, 100), "test": np.arange(100, 150)}
    settings = TrainingSettings(sigmas=(2, 5, 10, 20), max_perms=1, max_memory_gb=4.0)
    per_part = {part: settings for part in datasets}
    perms = {part: "none" for part in datasets}
    table = lc.learning_curve(datasets, frags, {}, splits, [10, 20, 80], per_part, perms, seed=0)
    assert list(table["n_train"]) == [10, 10, 20, 20, 80, 80]
    for model in ("full", "delta"):
        sub = table[table["model"] == model].set_index("n_train")
        assert sub.loc[80, "f_mae_kcal_mol_A"] < 0.5 * sub.loc[10, "f_mae_kcal_mol_A"]
        assert sub.loc[80, "e_mae_kcal_mol"] < sub.loc[10, "e_mae_kcal_mol"]
    table.insert(0, "system", "water_dimer")
    fits = lc.slopes(table)
    force = fits[fits["quantity"] == "f_mae_kcal_mol_A"]
    assert len(force) == 2 and (force["slope"] < -0.3).all()
    assert set(lc.with_slopes(table)["f_mae_slope"]) == set(force.slope)


# -- settings and the steps with files ---------------------------------------------------
def test_settings_defaults_and_checks():
    config = {"systems": {"water_benzene": {"preset": "water_benzene"}}}
    assert analysis_settings(config) == AnalysisSettings()
    assert learning_curve_sizes(config, "water_benzene") == [25, 50, 100]
    config["training"] = {"n_train": 60}
    assert learning_curve_sizes(config, "water_benzene") == [25, 50]
    config["training"] = {"n_train": 20}  # too small for two configured sizes: n_train/4, /2, /1
    assert learning_curve_sizes(config, "water_benzene") == [5, 10, 20]
    config["training"] = {"n_train": 1}
    with pytest.raises(ConfigError, match="too small"):
        learning_curve_sizes(config, "water_benzene")
    systems = check_config({"systems": config["systems"]})
    with pytest.raises(ConfigError, match="unknown key"):
        check_analysis({**config, "analysis": {"sizes": [1, 2]}}, systems)
    bad_entries = {"descriptor_entries": {"water_benzene": {"inter": [0, 1]}}}
    with pytest.raises(ConfigError, match="different fragments"):
        check_analysis({"systems": config["systems"], "analysis": bad_entries}, systems)


def test_steps_write_csv_and_figures(tmp_path, monkeypatch):
    """Each step writes its CSV and a figure titled with the system's label."""
    texts = []
    save = figures.save_figure

    def recording_save(fig, png, pdf):
        texts.append([fig.get_suptitle()] + [t.get_text() for t in fig.findobj(Text)])
        save(fig, png, pdf)

    monkeypatch.setattr(figures, "save_figure", recording_save)
    config = {"systems": {"water_benzene": {"preset": "water_benzene"}}, "seed": 0}
    config["analysis"] = {"descriptor_frame_pairs": 50}
    system = load_system(config, "water_benzene")
    rng = np.random.default_rng(0)
    R = system.atoms.positions + rng.normal(size=(8, 15, 3)) * 0.05
    F0, Fb = rng.normal(size=(2, 8, 15, 3))
    E_b = rng.normal(size=8) - 2
    paths = {k: str(tmp_path / f"{k}.npz") for k in ("full", "nonint", "binding")}
    for key, F, E in (
        ("full", F0 + Fb, E_b + 5),
        ("nonint", F0, np.full(8, 5.0)),
        ("binding", Fb, E_b),
    ):
        save_dataset(Dataset(R, system.z, F, E), paths[key])

    def out(name: str) -> dict[str, str]:
        return {ext: str(tmp_path / f"{name}.{ext}") for ext in ("csv", "png", "pdf")}

    label = "H₂O on C₆H₆"
    steps.descriptor_variance_figure(
        config=config,
        system="water_benzene",
        label=label,
        full=paths["full"],
        trajectory=None,
        **out("dv"),
    )
    read = pd.read_csv(tmp_path / "dv.csv")
    assert list(read["descriptor"]) == ["inverse_distance", "coulomb"]
    assert np.isfinite(read["ratio_std_dD"]).all()
    assert open(tmp_path / "dv.csv").readline().startswith("system,n_frames,")  # plain header
    steps.force_decomposition_figure(
        config=config, system="water_benzene", label=label, **paths, **out("fd")
    )
    atoms = pd.read_csv(tmp_path / "fd.csv")
    assert (atoms["frame"] == fd.representative_frame(E_b)).all() and len(atoms) == 15
    F, F0, Fb = (atoms[f"{k}_x_kcal_mol_A"] for k in ("F", "F0", "Fb"))
    np.testing.assert_allclose(F, F0 + Fb, atol=1e-4)
    steps.binding_stats(
        systems=["water_benzene"],
        names={"water_benzene": label},
        binding=[paths["binding"]],
        **out("bs"),
    )
    for name in ("dv", "fd", "bs"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
        assert (tmp_path / f"{name}.pdf").stat().st_size > 5_000
    assert len(texts) == 3
    for drawn in texts:
        assert any(label in t for t in drawn) and not any("water_benzene" in t for t in drawn)


def test_summary_figures_name_the_systems_by_their_labels(tmp_path, monkeypatch):
    """Figs. 6 and 7, the learning curves and the MD stability table write each system's
    label, not its key."""
    from deltagdml.analysis import plotting
    from deltagdml.dynamics import figures as md_figures

    texts = []

    def recording_save(fig, png, pdf):
        texts.append({t.get_text() for t in fig.findobj(Text)})

    monkeypatch.setattr(plotting, "save_figure", recording_save)
    monkeypatch.setattr(md_figures, "save_figure", recording_save)
    names = {"ab_dimer": "A–B dimer", "na_ring": "Na⁺–ring"}
    models = pd.DataFrame({"model": ["full", "delta"]})
    metrics = pd.concat([models.assign(system=s) for s in names], ignore_index=True)
    metrics = metrics.assign(e_mae_kcal_mol=[1.0, 0.5] * 2, f_mae_kcal_mol_A=[2.0, 1.0] * 2)
    fragments = pd.concat(
        [metrics.assign(fragment=k, formula=f) for k, f in enumerate(("CH4", "C6H6"))]
    )
    stability = metrics.assign(
        temperature_K=100.0, status="stable", simulated_ps=1.0, failure_time_ps=np.nan, reason=""
    )
    out = str(tmp_path / "f.png"), str(tmp_path / "f.pdf")
    plotting.plot_error_comparison(metrics, names, *out)
    plotting.plot_fragment_errors(fragments, names, *out)
    md_figures.plot_stability(stability, names, *out)
    curves = pd.concat([metrics.assign(n_train=n) for n in (25, 50, 100)], ignore_index=True)
    curves[["e_mae_kcal_mol", "f_mae_kcal_mol_A"]] /= np.sqrt(curves[["n_train"]].to_numpy())
    monkeypatch.setattr(figures, "save_figure", recording_save)
    figures.plot_learning_curves(curves, lc.slopes(curves), names, *out)
    for drawn in texts:
        shown = " ".join(drawn)
        assert all(label in shown for label in names.values()), shown
        assert not any(key in shown for key in names), shown
    assert len(texts) == 4


def test_plotting_leaves_matplotlib_global_state_alone(tmp_path):
    """Importing the figure modules, or drawing a figure, changes no global rcParams; the
    figures are drawn in the package's style all the same."""
    import subprocess
    import sys

    code = f"""
import matplotlib
import pandas as pd
before = dict(matplotlib.rcParams)
backend = matplotlib.rcParams["backend"]
from deltagdml.analysis import figures, plotting
from deltagdml.dynamics import figures as md_figures
assert dict(matplotlib.rcParams) == before, "import changed rcParams"
seen = {{}}
@plotting.styled
def probe():
    seen["font"] = matplotlib.rcParams["font.size"]
probe()
assert seen["font"] == plotting.STYLE["font.size"]
metrics = pd.DataFrame({{"system": ["a", "a"], "model": ["full", "delta"],
                        "e_mae_kcal_mol": [1.0, 0.5], "f_mae_kcal_mol_A": [2.0, 1.0]}})
plotting.plot_error_comparison(metrics, {{"a": "a"}}, r"{tmp_path}/e.png", r"{tmp_path}/e.pdf")
assert dict(matplotlib.rcParams) == before, "drawing changed rcParams"
assert matplotlib.rcParams["backend"] == backend
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "e.png").stat().st_size > 5_000


def test_paper_comparison_sets_the_run_beside_the_paper():
    from deltagdml.analysis.paper import (
        PAPER_FORCE_MAE_CHANGE,
        paper_comparison,
        paper_markdown,
    )

    comparison = pd.DataFrame(
        {"system": ["wb", "mine", "ch4"], "f_mae_change_pct": [-60.0, -10.0, -40.0]}
    )
    metrics = pd.DataFrame(
        {
            "system": ["wb", "wb", "mine", "ch4"],
            "model": ["full", "delta", "full", "full"],
            "n_train": [1000, 1000, 50, 100],
        }
    )
    presets = {"wb": "water_benzene", "mine": None, "ch4": "methane_dimer"}
    table = paper_comparison(comparison, metrics, presets)
    assert table["system"].tolist() == ["wb", "ch4"]  # a user's own system has no paper row
    wb = table.set_index("system").loc["wb"]
    n_paper, change_paper = PAPER_FORCE_MAE_CHANGE["water_benzene"]
    assert (wb["n_train"], wb["n_train_paper"]) == (1000, n_paper)
    assert wb["difference_pct_points"] == pytest.approx(-60.0 - change_paper)
    text = "\n".join(paper_markdown(table))
    assert "| ch4 | 100 (not the paper's size) | 200 |" in text
    assert "| wb | 1000 | 1000 |" in text
    assert paper_markdown(table.iloc[:0]) == []
