"""sGDML estimator: physics (forces = -∇E, invariances), exactness and bad input."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from deltagdml.errors import DatasetError, DeltaGDMLError, ModelError
from deltagdml.gdml.metrics import mae
from deltagdml.gdml.model import GDMLModel


@pytest.fixture
def trained(methane):
    R, E, F = methane.sample(60)
    model = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    return model, methane


def test_forces_are_negative_energy_gradient(trained):
    model, mol = trained
    R, _, _ = mol.sample(2)
    _, F = model.predict(R)
    h = 1e-5
    for atom in range(len(mol.z)):
        for c in range(3):
            Rp, Rm = R.copy(), R.copy()
            Rp[:, atom, c] += h
            Rm[:, atom, c] -= h
            fd = -(model.predict(Rp)[0] - model.predict(Rm)[0]) / (2 * h)
            np.testing.assert_allclose(F[:, atom, c], fd, rtol=1e-6, atol=1e-6)


def test_rotation_translation_invariance(trained):
    model, mol = trained
    R, _, _ = mol.sample(3)
    E, F = model.predict(R)
    rot = Rotation.random(random_state=3).as_matrix()
    R2 = R @ rot.T + np.array([1.0, -2.0, 0.5])
    E2, F2 = model.predict(R2)
    np.testing.assert_allclose(E2, E, rtol=1e-10)
    np.testing.assert_allclose(F2, F @ rot.T, rtol=1e-8, atol=1e-9)


def test_permutation_invariance(trained):
    model, mol = trained
    assert len(model.perms_) == 24  # Td acting on the four hydrogens
    R, _, _ = mol.sample(2)
    E, F = model.predict(R)
    for perm in model.perms_[1:]:
        E2, F2 = model.predict(R[:, perm])
        np.testing.assert_allclose(E2, E, rtol=1e-10)
        np.testing.assert_allclose(F2, F[:, perm], rtol=1e-8, atol=1e-9)


def test_recovers_training_forces_and_energies(methane):
    R, E, F = methane.sample(40)
    model = GDMLModel(sigma=2.0, lam=1e-12).fit(R, methane.z, F, E)
    E_pred, F_pred = model.predict(R)
    assert np.abs(F_pred - F).max() < 1e-4 * np.abs(F).max()
    # the energy constant makes training energies unbiased
    assert abs(np.mean(E_pred - E)) < 1e-8
    assert mae(E_pred, E) < 0.05


def test_generalises_and_symmetry_helps(methane):
    R, E, F = methane.sample(80)
    Rt, Et, Ft = methane.sample(100)
    sym = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    nosym = GDMLModel(sigma=2.0, perms="none").fit(R, methane.z, F, E)
    err_sym = mae(sym.predict(Rt)[1], Ft)
    err_nosym = mae(nosym.predict(Rt)[1], Ft)
    assert err_sym < 0.02 * np.abs(Ft).mean()
    assert err_sym < 0.5 * err_nosym


def test_forces_only_training(methane):
    R, _, F = methane.sample(30)
    model = GDMLModel(sigma=2.0).fit(R, methane.z, F)
    assert model.c_ == 0.0 and not model.use_E_
    assert np.isfinite(model.predict(R)[0]).all()


@pytest.mark.parametrize("sigma", [0.0, -1.0, np.nan])
def test_rejects_bad_sigma(sigma, methane):
    R, E, F = methane.sample(3)
    with pytest.raises(ModelError, match="sigma"):
        GDMLModel(sigma=sigma).fit(R, methane.z, F, E)


def test_rejects_bad_training_input(methane):
    R, E, F = methane.sample(10)
    z = methane.z
    cases = [
        ((R, z, F[:, :4], E), "F has shape"),
        ((R, z[:4], F, E), "z has shape"),
        ((R, z, F, E[:5]), "E has 5 entries"),
        ((R[:, :, :2], z, F[:, :, :2], E), r"R must have shape"),
    ]
    for args, message in cases:
        with pytest.raises(DatasetError, match=message):
            GDMLModel(sigma=1.0).fit(*args)
    for key in ("R", "F", "E"):
        arrays = {"R": R.copy(), "F": F.copy(), "E": E.copy()}
        arrays[key].flat[3] = np.nan
        with pytest.raises(DatasetError, match=f"{key} contains NaN"):
            GDMLModel(sigma=1.0).fit(arrays["R"], z, arrays["F"], arrays["E"])


def test_rejects_duplicate_geometries_before_assembly(methane):
    R, E, F = methane.sample(10)
    R[7] = R[2][[0, 2, 1, 3, 4]]  # same geometry with two hydrogens swapped
    F[7] = F[2][[0, 2, 1, 3, 4]]
    with pytest.raises(DatasetError, match="geometries 2 and 7 are identical"):
        GDMLModel(sigma=1.0).fit(R, methane.z, F, E)


def test_predict_checks_geometry_shape(trained):
    model, mol = trained
    with pytest.raises(ModelError, match="model is for 5 atoms"):
        model.predict(np.zeros((2, 4, 3)))
    with pytest.raises(DeltaGDMLError, match="NaN"):
        model.predict(np.full((1, 5, 3), np.nan))


def test_unfitted_model_refuses_to_predict():
    with pytest.raises(ModelError, match="not trained"):
        GDMLModel(sigma=1.0).predict(np.zeros((1, 3, 3)))


def test_blocked_cholesky_equals_lapack(monkeypatch):
    # Above LAPACK_CHOLESKY_MAX_ORDER the factorisation is blocked (OpenBLAS's threaded
    # dpotrf crashes on large matrices); force that path on a small matrix.
    from deltagdml.gdml.solvers import cholesky as solvers

    monkeypatch.setattr(solvers, "LAPACK_CHOLESKY_MAX_ORDER", 50)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((301, 40))
    K = X @ X.T / 40 + 0.1 * np.eye(301)
    A = np.array(np.triu(K), order="C")  # C-ordered upper triangle, as the kernel assembly
    L = solvers.cholesky_lower(A.T, block=64)
    np.testing.assert_allclose(np.tril(L), np.linalg.cholesky(K), atol=1e-12)
    not_pd = np.array(np.triu(K - 5.0 * np.eye(301)), order="C")
    with pytest.raises(np.linalg.LinAlgError):
        solvers.cholesky_lower(not_pd.T, block=64)
