"""Predictive uncertainty: exact GP variance against a direct computation, behaviour at and
away from the data, invariances, the nearest-geometry distance and thresholds."""

import numpy as np
import pytest
from ase import Atoms
from conftest import morse_energy_forces
from scipy.spatial.transform import Rotation

from deltagdml.errors import ModelError
from deltagdml.gdml.calculator import GDMLCalculator
from deltagdml.gdml.composite import DeltaModel, threshold_ratio, thresholds_by_part
from deltagdml.gdml.delta_io import load_delta_model, save_delta_model
from deltagdml.gdml.descriptor import dense_jacobian, descriptor, descriptor_and_jacobian
from deltagdml.gdml.kernel import SQRT5, assemble_kernel_reference
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import load_model, save_model
from deltagdml.gdml.uncertainty import (
    GPEnergyStd,
    NearestDistance,
    calibrated_threshold,
    geometries_from_descriptors,
)
from deltagdml.units import EV_PER_KCAL_MOL


def _matern(r: np.ndarray, sigma: float) -> np.ndarray:
    u = SQRT5 * r / sigma
    return (1.0 + u + u**2 / 3.0) * np.exp(-u)


def _prior(x: np.ndarray, y: np.ndarray, tril_perms: np.ndarray, sigma: float) -> float:
    """k(x, y) = Σ_p κ(|x − P_p y|), written out."""
    return float(sum(_matern(np.linalg.norm(x - y[p]), sigma) for p in tril_perms))


def _direct_std(model: GDMLModel, R_train: np.ndarray, R_query: np.ndarray, lam: float):
    """Posterior energy std given forces and energies at R_train, from a dense joint
    covariance whose energy–force blocks are central differences of the scalar prior."""
    P, s = model.tril_perms_, model.sigma
    M, N = R_train.shape[:2]
    X = descriptor(R_train)
    _, G = descriptor_and_jacobian(R_train)
    K_ff = assemble_kernel_reference(X, dense_jacobian(G), P, s)

    def cross(x_star: np.ndarray) -> np.ndarray:
        """cov(E(x*), F_j) = −∂k(x*, x(R_j))/∂R_j by central differences."""
        out = np.empty((M, N, 3))
        h = 1e-5
        for j in range(M):
            for a in range(N):
                for c in range(3):
                    Rp, Rm = R_train[j].copy(), R_train[j].copy()
                    Rp[a, c] += h
                    Rm[a, c] -= h
                    kp = _prior(x_star, descriptor(Rp[None])[0], P, s)
                    km = _prior(x_star, descriptor(Rm[None])[0], P, s)
                    out[j, a, c] = -(kp - km) / (2 * h)
        return out.reshape(-1)

    K_ef = np.array([cross(x) for x in X])
    K_ee = np.array([[_prior(a, b, P, s) for b in X] for a in X])
    A = np.block([[K_ff, K_ef.T], [K_ef, K_ee]]) + lam * np.eye(M * 3 * N + M)
    out = []
    for x in descriptor(R_query):
        v = np.concatenate([cross(x), [_prior(x, y, P, s) for y in X]])
        out.append(_prior(x, x, P, s) - v @ np.linalg.solve(A, v))
    return model.std_ * np.sqrt(np.maximum(out, 0.0))


@pytest.mark.parametrize("perms", ["none", "auto"])
def test_gp_std_matches_a_direct_dense_computation(water, perms):
    R, E, F = water.sample(4)
    lam = 1e-6
    model = GDMLModel(sigma=3.0, lam=lam, perms=perms).fit(R, water.z, F, E)
    R_query, _, _ = water.sample(3)
    expected = _direct_std(model, R, R_query, lam)
    got = model.predict_std(R_query)
    np.testing.assert_allclose(got, expected, rtol=2e-4)


def test_descriptors_rebuild_the_geometry_up_to_a_rigid_motion(methane):
    R, _, _ = methane.sample(5)
    X = descriptor(R)
    np.testing.assert_allclose(descriptor(geometries_from_descriptors(X)), X, rtol=1e-9)


def test_gp_cross_covariance_gives_the_models_energy(methane):
    """The force part of the estimator's cross-covariance, applied to the model's own
    coefficients, is its energy: the estimator and the model are one GP."""
    R, _, _ = methane.sample(20)
    R = geometries_from_descriptors(descriptor(R))  # the frame the estimator rebuilds
    E, F = morse_energy_forces(R, methane.R_ref)
    model = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    gp = GPEnergyStd(model.X_train_, model.tril_perms_, model.sigma, model.std_)
    assert gp.n_inducing_ == 20
    R_query, _, _ = methane.sample(4)
    k_f, _ = gp._cross(descriptor(R_query))
    alpha = model.alpha_.reshape(20, -1)[gp.inducing_].reshape(-1)
    E_pred, _ = model.predict(R_query)
    np.testing.assert_allclose(k_f @ alpha, (E_pred - model.c_) / model.std_, rtol=1e-8)


def test_gp_std_vanishes_at_the_data_and_grows_away_from_it(methane):
    R, E, F = methane.sample(30)
    model = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    at_data = model.predict_std(R)
    prior = model.std_ * np.sqrt(24)  # the prior std at a symmetric geometry is ≥ this scale
    assert at_data.max() < 1e-3 * prior
    rng = np.random.default_rng(1)
    step = rng.normal(size=R[:10].shape)
    stds = [model.predict_std(R[:10] + t * step).mean() for t in (0.01, 0.05, 0.2, 1.0)]
    assert np.all(np.diff(stds) > 0)
    far = model.predict_std(R[:3] * 3.0)  # stretched: far from every training geometry
    assert far.min() > 0.5 * model.std_


def test_gp_std_is_invariant_to_rotation_and_atom_permutation(methane):
    R, E, F = methane.sample(15)
    model = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    R_query, _, _ = methane.sample(3)
    std = model.predict_std(R_query)
    rot = Rotation.random(random_state=0).as_matrix()
    np.testing.assert_allclose(model.predict_std(R_query @ rot.T + 1.0), std, rtol=1e-6)
    np.testing.assert_allclose(model.predict_std(R_query[:, model.perms_[5]]), std, rtol=1e-6)


def test_fewer_inducing_geometries_bound_the_exact_std_from_above(methane):
    R, E, F = methane.sample(30)
    model = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    exact = GPEnergyStd(model.X_train_, model.tril_perms_, model.sigma, model.std_)
    subset = GPEnergyStd(model.X_train_, model.tril_perms_, model.sigma, model.std_, max_size=160)
    assert exact.n_inducing_ == 30 and subset.n_inducing_ == 10
    R_query, _, _ = methane.sample(8)
    X = descriptor(R_query)
    assert np.all(subset.std(X) >= exact.std(X) * (1 - 1e-8))


def test_nearest_distance_is_the_smallest_permuted_descriptor_distance(methane, monkeypatch):
    R, E, F = methane.sample(12)
    model = GDMLModel(sigma=2.0, uncertainty="nearest").fit(R, methane.z, F, E)
    np.testing.assert_allclose(model.predict_std(R), 0.0, atol=1e-6)
    R_query, _, _ = methane.sample(2)
    X = descriptor(R_query)
    expected = [
        min(np.linalg.norm(x - y[p]) for y in model.X_train_ for p in model.tril_perms_) for x in X
    ]
    got = NearestDistance(model.X_train_, model.tril_perms_, model.sigma).std(X)
    np.testing.assert_allclose(got, np.array(expected) / model.sigma, rtol=1e-8)
    monkeypatch.setattr(NearestDistance, "CHUNK_ENTRIES", 1)  # one query per chunk
    chunked = NearestDistance(model.X_train_, model.tril_perms_, model.sigma).std(X)
    np.testing.assert_allclose(chunked, got, rtol=1e-12)
    E_pred, F_pred, std = model.predict(R_query, return_std=True)
    np.testing.assert_allclose(std, got)
    np.testing.assert_array_equal(E_pred, model.predict(R_query)[0])


def test_threshold_is_a_quantile_of_validation_uncertainties(methane):
    values = np.arange(1.0, 101.0)
    assert calibrated_threshold(values, 1.0, 1.5) == 150.0
    assert calibrated_threshold(values, 0.5, 1.0) == pytest.approx(50.5)
    for bad in ((values, 0.0, 1.0), (values, 0.5, -1.0), (np.array([np.nan]), 0.5, 1.0)):
        with pytest.raises(ModelError):
            calibrated_threshold(*bad)
    R, E, F = methane.sample(12)
    model = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    R_valid, _, _ = methane.sample(6)
    threshold = model.calibrate_uncertainty(R_valid, quantile=1.0, factor=2.0)
    assert threshold == pytest.approx(2.0 * model.predict_std(R_valid).max())
    assert model.uncertainty_threshold_ == threshold
    with pytest.raises(ModelError, match="uncertainty"):
        GDMLModel(sigma=2.0, uncertainty="committee").fit(R, methane.z, F, E)


def _water_delta(tmp_path):
    """A Δ model of two Morse waters with calibrated parts, saved and loaded again."""
    water = np.array([[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])
    R_ref = np.vstack([water, water + [0.0, 0.0, 3.0]])
    z, fragments = np.array([8, 1, 1, 8, 1, 1]), [np.arange(3), np.arange(3, 6)]
    rng = np.random.default_rng(0)
    R = R_ref + rng.normal(scale=0.04, size=(40, 6, 3))
    E, F = morse_energy_forces(R, R_ref)
    parts = {}
    E_sum, F_sum = np.zeros(40), np.zeros_like(F)
    for k, f in enumerate(fragments):
        E_k, F_k = morse_energy_forces(R[:, f], R_ref[f])
        parts[f"fragment_{k}"] = GDMLModel(sigma=2.0).fit(R[:30, f], z[f], F_k[:30], E_k[:30])
        E_sum += E_k
        F_sum[:, f] = F_k
    parts["binding"] = GDMLModel(sigma=2.0).fit(R[:30], z, (F - F_sum)[:30], (E - E_sum)[:30])
    for k, f in enumerate(fragments):
        parts[f"fragment_{k}"].calibrate_uncertainty(R[30:, f], 1.0, 1.5)
    parts["binding"].calibrate_uncertainty(R[30:], 1.0, 1.5)
    path = tmp_path / "delta.npz"
    save_delta_model(DeltaModel.from_parts(z, fragments, parts, {}), path)
    return load_delta_model(path), parts, R, z


def test_delta_uncertainty_combines_its_parts_and_survives_the_file(tmp_path):
    delta, parts, R, z = _water_delta(tmp_path)
    for part, model in delta.parts().items():
        assert model.uncertainty_threshold_ == parts[part].uncertainty_threshold_ > 0
    manifest_parts = delta.manifest_["parts"]
    assert manifest_parts["binding"]["uncertainty"]["unit"] == "kcal/mol"
    by_part = delta.predict_std_parts(R[30:])
    np.testing.assert_allclose(by_part["binding"], parts["binding"].predict_std(R[30:]))
    np.testing.assert_allclose(by_part["fragment_1"], parts["fragment_1"].predict_std(R[30:, 3:]))
    E, F, std = delta.predict(R[30:], return_std=True)
    np.testing.assert_allclose(std, np.sqrt(sum(s**2 for s in by_part.values())))
    # validation frames sit under the thresholds (factor 1.5 over their maximum) ...
    ratio = threshold_ratio(by_part, thresholds_by_part(delta))
    assert ratio.max() == pytest.approx(1 / 1.5)
    # ... pulling the waters apart leaves the binding model's data, not the fragments'
    apart = R[30:].copy()
    apart[:, 3:] += [0.0, 0.0, 1.5]
    far = delta.predict_std_parts(apart)
    assert far["binding"].min() > parts["binding"].uncertainty_threshold_
    # (the std of a near-training geometry is a difference of O(1) numbers: compare absolutely)
    atol = 1e-3 * parts["fragment_1"].uncertainty_threshold_
    np.testing.assert_allclose(far["fragment_1"], by_part["fragment_1"], atol=atol)


def test_calculator_reports_the_uncertainty_in_ev(tmp_path):
    delta, _, R, z = _water_delta(tmp_path)
    atoms = Atoms(z, positions=R[35])
    atoms.calc = GDMLCalculator(delta, uncertainty=True)
    atoms.get_potential_energy()
    res = atoms.calc.results
    stds = delta.predict_std_parts(R[35])
    for part, std in stds.items():
        assert res[f"uncertainty_{part}"] == pytest.approx(std[0] * EV_PER_KCAL_MOL)
    assert res["uncertainty"] == pytest.approx(delta.predict_std(R[35])[0] * EV_PER_KCAL_MOL)
    assert 0 < res["uncertainty_ratio"] < 1
    atoms.calc = GDMLCalculator(delta)
    atoms.get_potential_energy()
    assert "uncertainty" not in atoms.calc.results


def test_the_model_file_keeps_the_estimator_its_size_and_threshold(methane, tmp_path):
    R, E, F = methane.sample(30)
    model = GDMLModel(sigma=2.0).fit(R, methane.z, F, E)
    model.set_uncertainty("gp", max_size=160).calibrate_uncertainty(R[:5] + 0.01)
    save_model(model, tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz")
    assert (again.uncertainty, again.uncertainty_max_size) == ("gp", 160)
    assert again.uncertainty_threshold_ == model.uncertainty_threshold_
    R_query, _, _ = methane.sample(3)
    np.testing.assert_array_equal(again.predict_std(R_query), model.predict_std(R_query))
