"""Model files (sGDML layout), the ASE calculator, σ selection and the command line."""

import json
import zipfile

import numpy as np
import pytest
from ase import Atoms

from deltagdml.cli import main
from deltagdml.errors import ModelError
from deltagdml.gdml.calculator import GDMLCalculator
from deltagdml.gdml.dataset import Dataset, save_dataset
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import load_model, save_model
from deltagdml.gdml.selection import select_sigma
from deltagdml.units import EV_PER_KCAL_MOL


@pytest.fixture
def model(methane):
    R, E, F = methane.sample(40)
    return GDMLModel(sigma=2.0).fit(R, methane.z, F, E)


def test_save_load_round_trip_is_identical(model, methane, tmp_path):
    path = tmp_path / "m.npz"
    save_model(model, path, idxs_train=np.arange(40))
    loaded = load_model(path)
    R, _, _ = methane.sample(7)
    E1, F1 = model.predict(R)
    E2, F2 = loaded.predict(R)
    np.testing.assert_array_equal(E1, E2)
    np.testing.assert_array_equal(F1, F2)
    with np.load(path, allow_pickle=False) as f:
        for key in (
            "type",
            "z",
            "sig",
            "lam",
            "perms",
            "tril_perms_lin",
            "R_desc",
            "R_d_desc_alpha",
            "alphas_F",
            "c",
            "std",
            "use_E",
            "idxs_train",
            "md5_train",
            "code_version",
            "r_unit",
            "e_unit",
        ):
            assert key in f.files, key
        assert f["R_desc"].shape == (model.X_train_.shape[1], 40)
        assert str(f["e_unit"]) == "kcal/mol"


def test_load_refuses_pickled_arrays(model, tmp_path):
    path = tmp_path / "evil.npz"
    save_model(model, tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as f:
        arrays = dict(f)
    arrays["R_desc"] = np.array([{"x": 1}], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match="pickled"):
        load_model(path)


def test_load_rejects_missing_keys_and_garbage(tmp_path):
    np.savez(tmp_path / "d.npz", R=np.zeros((1, 2, 3)))
    with pytest.raises(ModelError, match="missing key"):
        load_model(tmp_path / "d.npz")
    (tmp_path / "g.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable"):
        load_model(tmp_path / "g.npz")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "absent.npz")
    assert not zipfile.is_zipfile(tmp_path / "g.npz")


def test_calculator_units_and_consistency(model, methane):
    R, _, _ = methane.sample(1)
    atoms = Atoms(numbers=methane.z, positions=R[0])
    atoms.calc = GDMLCalculator(model)
    E, F = model.predict(R)
    assert atoms.get_potential_energy() == pytest.approx(E[0] * EV_PER_KCAL_MOL, rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), F[0] * EV_PER_KCAL_MOL, rtol=1e-12)
    # forces in eV/Å are the negative gradient of the energy in eV
    h = 1e-5
    atoms.positions[2, 0] += h
    e_plus = atoms.get_potential_energy()
    atoms.positions[2, 0] -= 2 * h
    e_minus = atoms.get_potential_energy()
    assert -(e_plus - e_minus) / (2 * h) == pytest.approx(F[0, 2, 0] * EV_PER_KCAL_MOL, rel=1e-5)


def test_calculator_rejects_other_atoms(model):
    atoms = Atoms("CH3O", positions=np.random.default_rng(0).normal(size=(5, 3)))
    atoms.calc = GDMLCalculator(model)
    with pytest.raises(ModelError, match="trained for atoms"):
        atoms.get_potential_energy()


def test_sigma_selection_picks_validation_minimum(methane):
    R, E, F = methane.sample(40)
    Rv, Ev, Fv = methane.sample(30)
    best, scores = select_sigma(R, methane.z, F, E, Rv, Fv, Ev, sigmas=[0.05, 0.5, 2, 8, 64])
    maes = [s.f_mae for s in scores]  # the criterion: validation force MAE
    assert best.sigma == scores[int(np.argmin(maes))].sigma
    assert best.sigma > 0.05  # a tiny σ cannot generalise


def test_sigma_selection_stops_early_when_error_rises(methane):
    R, E, F = methane.sample(30)
    Rv, Ev, Fv = methane.sample(20)
    grid = [2, 1000, 2000, 4000, 8000, 16000]
    _, scores = select_sigma(R, methane.z, F, E, Rv, Fv, Ev, sigmas=grid, patience=2)
    assert len(scores) < len(grid)


def test_cli_train_and_test(methane, tmp_path):
    R, E, F = methane.sample(120)
    save_dataset(
        Dataset(R=R, z=methane.z, F=F, E=E, name="ch4", theory="morse"), tmp_path / "d.npz"
    )
    rc = main(
        [
            "train",
            str(tmp_path / "d.npz"),
            "-o",
            str(tmp_path / "m.npz"),
            "--n-train",
            "40",
            "--n-valid",
            "20",
            "--sigmas",
            "1",
            "2",
            "4",
            "--scores",
            str(tmp_path / "s.json"),
        ]
    )
    assert rc == 0
    assert len(json.loads((tmp_path / "s.json").read_text())) >= 2
    assert float(np.log2(load_model(tmp_path / "m.npz").sigma)).is_integer()  # grid or beyond
    assert main(["train", str(tmp_path / "absent.npz"), "-o", str(tmp_path / "x.npz")]) == 1
    assert not (tmp_path / "x.npz").exists()
