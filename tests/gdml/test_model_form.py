"""GDMLModel in scikit-learn form, and model files that keep what the model holds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deltagdml.cli import main
from deltagdml.errors import ModelError
from deltagdml.gdml.dataset import Dataset, save_dataset
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import load_model, save_model


def test_init_only_stores_parameters_and_fit_validates(methane):
    perms = np.arange(5)[None]
    model = GDMLModel(sigma=-1, lam=1e-8, perms=perms, solver="analytic")
    assert (model.sigma, model.lam, model.solver) == (-1, 1e-8, "analytic")
    assert model.perms is perms
    assert not [name for name in vars(model) if name.endswith("_")]  # nothing fitted yet
    R, E, F = methane.sample(6)
    with pytest.raises(ModelError, match="sigma must be a positive number"):
        model.fit(R, methane.z, F, E)
    fitted = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    assert set(fitted.timings_) >= {"assembly_s", "solve_s", "total_s"}
    assert fitted.solver_ == "analytic"


def test_kernel_buffer_gives_the_same_model(methane):
    R, E, F = methane.sample(12)
    plain = GDMLModel(sigma=3.0).fit(R, methane.z, F, E)
    buffer = np.full(10**6, np.nan)  # reused memory, dirty from an earlier use
    reused = GDMLModel(sigma=3.0, kernel_buffer=buffer).fit(R, methane.z, F, E)
    assert np.isfinite(buffer[:10]).all()  # the kernel went there
    np.testing.assert_array_equal(plain.alpha_, reused.alpha_)


def test_iterative_and_analytic_paths_agree_and_are_recorded(methane, tmp_path):
    R, E, F = methane.sample(20)
    analytic = GDMLModel(sigma=3.0, solver="analytic").fit(R, methane.z, F, E)
    iterative = GDMLModel(sigma=3.0, solver="iterative").fit(R, methane.z, F, E)
    R_test, _, _ = methane.sample(5)
    np.testing.assert_allclose(
        iterative.predict(R_test)[1], analytic.predict(R_test)[1], rtol=1e-3, atol=1e-3
    )
    save_model(iterative, tmp_path / "it.npz")
    assert str(np.load(tmp_path / "it.npz")["solver_name"]) == "iterative"
    assert load_model(tmp_path / "it.npz").solver_ == "iterative"


def test_a_loaded_model_without_force_coefficients_saves_again(methane, tmp_path):
    """sGDML files need not hold alphas_F; re-saving such a model must work."""
    R, E, F = methane.sample(10)
    save_model(GDMLModel(sigma=3.0).fit(R, methane.z, F, E), tmp_path / "a.npz")
    arrays = dict(np.load(tmp_path / "a.npz"))
    del arrays["alphas_F"], arrays["checksum"]  # as sGDML writes it: no checksum either
    np.savez(tmp_path / "b.npz", **arrays)
    loaded = load_model(tmp_path / "b.npz")
    assert loaded.alpha_ is None
    save_model(loaded, tmp_path / "c.npz")
    again = load_model(tmp_path / "c.npz")
    assert "alphas_F" not in np.load(tmp_path / "c.npz").files
    np.testing.assert_array_equal(again.predict(R)[1], loaded.predict(R)[1])


def test_from_arrays_builds_a_fitted_model(methane):
    R, E, F = methane.sample(8)
    m = GDMLModel(sigma=3.0).fit(R, methane.z, F, E)
    rebuilt = GDMLModel.from_arrays(
        z=m.z_,
        perms=m.perms_,
        tril_perms=m.tril_perms_,
        X_train=m.X_train_,
        V=m.V_,
        alpha=m.alpha_,
        sigma=m.sigma,
        lam=m.lam,
        std=m.std_,
        c=m.c_,
        use_E=m.use_E_,
    )
    for a, b in zip(rebuilt.predict(R), m.predict(R), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cli_trains_and_tests_on_a_forces_only_dataset(methane, tmp_path, capsys):
    R, _, F = methane.sample(60)
    save_dataset(Dataset(R=R, z=methane.z, F=F, name="ch4"), tmp_path / "d.npz")
    model = str(tmp_path / "m.npz")
    args = ["train", str(tmp_path / "d.npz"), "-o", model, "--n-train", "20", "--n-valid", "10"]
    assert main([*args, "--sigmas", "2", "4"]) == 0
    assert load_model(model).X_train_.shape[0] == 20
    capsys.readouterr()
    assert main(["test", model, str(tmp_path / "d.npz"), "--n-test", "15"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_test"] == 15 and np.isfinite(report["f_mae_kcal_mol_A"])
