"""Low-memory solver: kernel products, Nyström preconditioner, CG checkpoints, selection."""

import tracemalloc

import numpy as np
import pytest

from deltagdml.errors import ModelError
from deltagdml.gdml.descriptor import dense_jacobian, descriptor_and_jacobian
from deltagdml.gdml.kernel import assemble_kernel
from deltagdml.gdml.metrics import mae
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.selection import select_sigma
from deltagdml.gdml.solvers.cg import Checkpoint, conjugate_gradient
from deltagdml.gdml.solvers.choice import choose_solver, estimate_memory, training_mem_mb
from deltagdml.gdml.solvers.cholesky import cholesky_jittered
from deltagdml.gdml.solvers.nystrom import (
    IterativeOptions,
    KernelOperator,
    NystromPreconditioner,
    fingerprint,
    inducing_geometries,
)
from deltagdml.gdml.symmetry import descriptor_permutation, find_permutations
from deltagdml.settings import TrainingSettings


@pytest.fixture(params=["symmetric", "identity"])
def kernel_case(methane, request):
    R, _, _ = methane.sample(12)
    perms = find_permutations(R, methane.z)
    if request.param == "identity":  # the compact-Jacobian path of KernelBlocks
        perms = perms[:1]
    tril_perms = np.array([descriptor_permutation(p) for p in perms])
    X, G = descriptor_and_jacobian(R)
    J = dense_jacobian(G)
    K = assemble_kernel(X, J, tril_perms, 2.0, upper_only=False)
    return KernelOperator(X, J, tril_perms, 2.0, n_workers=2), K


def random_spd(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (Q * np.logspace(0, 3, n)) @ Q.T


def test_kernel_products_and_rows_equal_assembled_matrix(kernel_case):
    op, K = kernel_case
    v = np.random.default_rng(0).normal(size=op.n)
    for workers in (1, 2):  # one and several query geometries per chunk
        op_w = KernelOperator(op.X, op.J, op.tril_perms, op.sigma, n_workers=workers)
        assert len(op_w.query_chunks) == {1: 4, 2: 12}[workers]
        np.testing.assert_allclose(op_w @ v, K @ v, rtol=1e-10, atol=1e-12 * np.abs(K @ v).max())
    S = np.array([1, 4, 11])
    rows = (S[:, None] * op.n3 + np.arange(op.n3)).ravel()
    np.testing.assert_allclose(op.rows(S), K[rows], atol=1e-13 * np.abs(K).max())


def test_diagonal_blocks(kernel_case):
    op, K = kernel_case
    n3 = op.n3
    expected = [K[i * n3 : (i + 1) * n3, i * n3 : (i + 1) * n3] for i in range(op.M)]
    np.testing.assert_allclose(op.diagonal_blocks(), expected, atol=1e-13 * np.abs(K).max())


@pytest.mark.parametrize("m", [4, 12])
def test_preconditioner_is_woodbury_inverse(kernel_case, m):
    op, K = kernel_case
    lam = 1e-6 * np.mean(np.diag(K))
    S = inducing_geometries(op.M, m)
    cols = (S[:, None] * op.n3 + np.arange(op.n3)).ravel()
    precond = NystromPreconditioner(op.rows(S), cols, op.diagonal_blocks(), lam)
    # Dense reference: K_nys + blockdiag(K − K_nys) + λI (m = M: K_nys = K).
    K_mm = K[np.ix_(cols, cols)]
    K_nys = K[:, cols] @ np.linalg.solve(
        K_mm + 1e-12 * np.mean(np.diag(K_mm)) * np.eye(len(cols)), K[cols]
    )
    A = K_nys + lam * np.eye(op.n)
    for i in range(op.M):
        b = slice(i * op.n3, (i + 1) * op.n3)
        A[b, b] += K[b, b] - K_nys[b, b]
    v = np.random.default_rng(1).normal(size=op.n)
    exact = np.linalg.solve(A, v)
    np.testing.assert_allclose(precond(v), exact, rtol=1e-5, atol=1e-6 * np.abs(exact).max())
    if m == op.M:
        np.testing.assert_allclose(A, K + lam * np.eye(op.n), atol=1e-9 * np.abs(K).max())


def test_jittered_cholesky_retries_within_one_copy_of_the_matrix():
    """K_mm's factor needs a larger jitter when the smallest fails; every retry reuses one
    work copy of K_mm, so the solver's memory estimate (two k×k matrices) holds."""
    n = 600
    Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(n, n)))
    w = np.linspace(1.0, 2.0, n)
    w[0] = -1e-9  # rounding below zero: jitters of 1e-12 … 1e-10 × the mean diagonal fail
    A = np.ascontiguousarray((Q * w) @ Q.T)
    tracemalloc.start()
    L = np.tril(cholesky_jittered(A.copy(), "A"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    eps = np.mean(np.diag(A)) * 1e-9
    np.testing.assert_allclose(L @ L.T, A + eps * np.eye(n), rtol=0, atol=1e-12)
    assert peak < 2.5 * A.nbytes  # the argument's copy and one work matrix (the factor)


def test_cg_reaches_tolerance_with_true_residual():
    A = random_spd(60)
    b = np.random.default_rng(2).normal(size=60)
    res = conjugate_gradient(lambda v: A @ v, b, lambda r: r, tol=1e-8)
    assert res.converged
    assert np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b)
    assert res.residual <= 1e-8


def test_cg_resumes_from_checkpoint_exactly(tmp_path):
    A = random_spd(80, seed=3)
    b = np.random.default_rng(4).normal(size=80)
    diag = np.diag(A).copy()
    precond = lambda r: r / diag  # noqa: E731
    full = conjugate_gradient(lambda v: A @ v, b, precond, tol=1e-10)
    ckpt = Checkpoint(tmp_path / "cg.npz", "system-a", every_s=0.0)
    part = conjugate_gradient(lambda v: A @ v, b, precond, tol=1e-10, max_iter=15, checkpoint=ckpt)
    assert not part.converged and part.iterations == 15
    resumed = conjugate_gradient(lambda v: A @ v, b, precond, tol=1e-10, checkpoint=ckpt)
    assert resumed.iterations == full.iterations
    np.testing.assert_allclose(resumed.x, full.x, rtol=1e-8, atol=1e-12)
    # A checkpoint of another system is ignored: CG starts from zero.
    other = Checkpoint(tmp_path / "cg.npz", "system-b", every_s=1e9)
    assert other.load() is None
    fresh = conjugate_gradient(lambda v: A @ v, b, precond, tol=1e-10, checkpoint=other)
    assert fresh.iterations == full.iterations


def test_corrupt_checkpoint_is_ignored(tmp_path):
    path = tmp_path / "cg.npz"
    path.write_bytes(b"not a zip file")
    assert Checkpoint(path, "x").load() is None


def test_fingerprint_depends_on_inputs():
    X = np.arange(6.0).reshape(2, 3)
    assert fingerprint(X, sigma=1.0) == fingerprint(X.copy(), sigma=1.0)
    assert fingerprint(X, sigma=1.0) != fingerprint(X, sigma=2.0)
    assert fingerprint(X, sigma=1.0) != fingerprint(X + 1e-12, sigma=1.0)


@pytest.mark.parametrize("n_inducing", [4, 20])
def test_iterative_test_errors_within_2_percent_of_analytic(methane, n_inducing):
    R, E, F = methane.sample(80)
    R_test, E_test, F_test = methane.sample(300)
    errors = {}
    for solver in ("analytic", "iterative"):
        model = GDMLModel(
            sigma=2.0, solver=solver, iterative=IterativeOptions(n_inducing=n_inducing)
        ).fit(R, methane.z, F, E)
        assert model.solver_ == solver
        E_pred, F_pred = model.predict(R_test)
        errors[solver] = (mae(F_pred, F_test), mae(E_pred, E_test))
    info = model.solver_info_
    assert info["converged"] and info["residual"] <= 1e-4
    assert info["n_inducing"] == n_inducing
    for analytic, iterative in zip(errors["analytic"], errors["iterative"], strict=True):
        assert abs(iterative - analytic) <= 0.02 * analytic


def test_training_resumes_from_checkpoint_dir(methane, tmp_path):
    R, E, F = methane.sample(40)
    options = IterativeOptions(n_inducing=4, checkpoint_dir=str(tmp_path), checkpoint_every_s=0.0)
    first = GDMLModel(sigma=2.0, solver="iterative", iterative=options).fit(R, methane.z, F, E)
    assert len(list(tmp_path.glob("cg_*.npz"))) == 1
    again = GDMLModel(sigma=2.0, solver="iterative", iterative=options).fit(R, methane.z, F, E)
    assert again.solver_info_["iterations"] == first.solver_info_["iterations"]
    np.testing.assert_allclose(again.alpha_, first.alpha_)
    GDMLModel(sigma=3.0, solver="iterative", iterative=options).fit(R, methane.z, F, E)
    assert len(list(tmp_path.glob("cg_*.npz"))) == 2  # one file per linear system


def test_auto_solver_follows_memory_limit(methane):
    R, E, F = methane.sample(30)
    n = 30 * 15
    assert estimate_memory(30, 5, 24, "analytic") >= 8 * n * n
    tiny = estimate_memory(30, 5, 24, "analytic") / 2**30 * 0.99
    assert choose_solver("auto", 30, 5, 24, 16.0) == "analytic"
    assert choose_solver("auto", 30, 5, 24, tiny) == "iterative"
    assert choose_solver("analytic", 30, 5, 24, tiny) == "analytic"
    model = GDMLModel(sigma=2.0, max_memory_gb=tiny).fit(R, methane.z, F, E)
    assert model.solver_ == "iterative"
    with pytest.raises(ModelError, match="solver must be"):
        choose_solver("cholesky", 30, 5, 24, 16.0)


def test_paper_sizes_choose_iterative_within_16_gb():
    # Benzene dimer at M = 1000: a 41 GB kernel matrix does not fit; the iterative
    # solver's estimate does, and the Snakemake memory request follows it.
    assert choose_solver("auto", 1000, 24, 288, 16) == "iterative"
    assert estimate_memory(1000, 24, 288, "analytic") > 41e9
    mem_mb = training_mem_mb(1000, 24, 288, 16)
    assert 1000 < mem_mb <= 16 * 1024
    assert training_mem_mb(100, 5, 24, 16) == pytest.approx(
        estimate_memory(100, 5, 24, "analytic") / 2**20, abs=1
    )
    assert TrainingSettings().solver == "auto" and TrainingSettings().max_memory_gb == 16


def test_sigma_search_with_iterative_solver(methane):
    R, E, F = methane.sample(40)
    Rv, Ev, Fv = methane.sample(30)
    best, scores = select_sigma(
        R,
        methane.z,
        F,
        E,
        Rv,
        Fv,
        Ev,
        sigmas=[1.0, 2.0],
        solver="iterative",
        iterative=IterativeOptions(n_inducing=4),
        extend=False,
    )
    assert best.solver_ == "iterative" and len(scores) == 2


def test_pipeline_training_with_iterative_solver(methane, tmp_path, caplog):
    from deltagdml.data.splits import make_splits, save_splits
    from deltagdml.gdml.dataset import Dataset, save_dataset
    from deltagdml.gdml.model_io import load_model
    from deltagdml.workflow.steps.train import train_model

    R, E, F = methane.sample(50)
    save_dataset(Dataset(R=R, z=methane.z, F=F, E=E), tmp_path / "full.npz")
    save_splits(make_splits(E, 30, 10, 10, seed=0), tmp_path / "splits.npz", n_geometries=50)
    config = {
        "systems": {"ch4": {"dataset": "full.npz"}},
        "training": {"n_train": 30, "n_valid": 10, "n_test": 10, "sigmas": [2.0]},
    }
    config["training"].update(solver="iterative", max_memory_gb=1, solver_tol=1e-5)
    names = ("dataset", "splits", "model", "scores", "timing")
    files = ("full.npz", "splits.npz", "m.npz", "s.csv", "t.csv")
    paths = {k: str(tmp_path / f) for k, f in zip(names, files, strict=True)}
    caplog.set_level("INFO", logger="deltagdml")
    train_model(config=config, system="ch4", part="full", base_dir=str(tmp_path), **paths)
    assert "CG converged" in caplog.text
    model = load_model(tmp_path / "m.npz")
    _, F_pred = model.predict(R[:5])
    assert np.isfinite(F_pred).all()
    assert not (tmp_path / ".full_cg_checkpoints").exists()  # removed once trained
