"""σ search: the bracket and coarse-to-fine searches agree with the plain grid (the bracket
from any start), the grid grows past a best edge, a warm-started iterative solve agrees
with a cold one, a few wall frames do not pull σ down, no σ is tried below the kernel
floor, and the σ-independent kernel terms computed once give every σ the kernel and
coefficients of a fit from scratch, within their budget."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MorseMolecule, morse_energy_forces

from deltagdml.errors import ModelError
from deltagdml.gdml import selection
from deltagdml.gdml.descriptor import dense_jacobian, descriptor_and_jacobian
from deltagdml.gdml.kernel import assemble_kernel
from deltagdml.gdml.metrics import F_MAE, mae, r2
from deltagdml.gdml.model import GDMLModel, TrainingGeometry
from deltagdml.gdml.selection import (
    KERNEL_FLOOR,
    kernel_cache_bytes,
    matern,
    nearest_neighbour_distance,
    select_sigma,
    sigma_floor,
)
from deltagdml.gdml.solvers.nystrom import IterativeOptions, solve_iterative
from deltagdml.gdml.symmetry import descriptor_permutation, find_permutations

GRID = [float(2.0**k) for k in range(-2, 11)]  # 0.25 … 1024


def split(sample, n_train: int = 30, n_valid: int = 30):
    R, E, F = sample(n_train)
    Rv, Ev, Fv = sample(n_valid)
    return (R, F, E), (Rv, Fv, Ev)


def search(z, train, valid, sigmas, **kwargs):
    (R, F, E), (Rv, Fv, Ev) = train, valid
    return select_sigma(R, z, F, E, Rv, Fv, Ev, sigmas=sigmas, perms="none", **kwargs)


@pytest.fixture(scope="module")
def gfn2_methane_dimer():
    """A real case: 60 methane-dimer geometries from GFN2-xTB MD, labelled with GFN2-xTB."""
    from deltagdml.data.labelling import label_frames
    from deltagdml.data.sampling import sample_md
    from deltagdml.data.systems import DEFAULT_SYSTEMS, system_from_config

    system = system_from_config("methane_dimer", DEFAULT_SYSTEMS["methane_dimer"])
    traj = sample_md(system, None, 300.0, 0.5, 60, 5, seed=0, progress=lambda m: None)
    labels = label_frames(system, traj["R"], None, progress=lambda m: None)
    order = np.random.default_rng(0).permutation(60)
    R, E, F = traj["R"][order], labels["E"][order], labels["F"][order]
    return system.z, (R[:30], F[:30], E[:30]), (R[30:], F[30:], E[30:])


@pytest.mark.parametrize(
    ("strategy", "stages"), [("coarse_to_fine", {"coarse", "fine"}), ("bracket", {"bracket"})]
)
def test_faster_searches_pick_the_grids_sigma_with_fewer_fits(
    methane, gfn2_methane_dimer, strategy, stages
):
    cases = [(methane.z, *split(methane.sample)), gfn2_methane_dimer]
    for z, train, valid in cases:
        grid_best, grid_scores = search(
            z, train, valid, GRID, extend=False, patience=len(GRID), search="grid"
        )
        fast_best, fast_scores = search(z, train, valid, GRID, extend=False, search=strategy)
        assert fast_best.sigma == grid_best.sigma
        assert GRID[0] < grid_best.sigma < GRID[-1]  # an interior optimum: a real test
        assert len(fast_scores) < len(grid_scores)
        assert {s.stage for s in fast_scores} <= stages
        np.testing.assert_array_equal(fast_best.alpha_, grid_best.alpha_)


@pytest.mark.parametrize("ratio", [1e-3, 1e4])
def test_a_bracket_search_started_at_either_end_walks_to_the_grids_sigma(
    methane, monkeypatch, ratio
):
    train, valid = split(methane.sample)
    grid_best, _ = search(
        methane.z, train, valid, GRID, extend=False, patience=len(GRID), search="grid"
    )
    monkeypatch.setattr(selection, "START_RATIO", ratio)
    best, scores = search(methane.z, train, valid, GRID, extend=False, search="bracket")
    assert scores[0].sigma == (GRID[0] if ratio < 1 else GRID[-1])  # started at that end
    assert best.sigma == grid_best.sigma
    errors = {s.sigma: s.f_mae for s in scores}
    i = GRID.index(best.sigma)
    assert errors[GRID[i - 1]] > errors[best.sigma] < errors[GRID[i + 1]]  # bracketed


def test_the_bracket_search_starts_at_the_median_distance_heuristic(methane):
    (R, F, E), _ = split(methane.sample)
    X, _ = descriptor_and_jacobian(R)
    d = np.linalg.norm(X[:, None] - X[None], axis=-1)[np.triu_indices(len(X), 1)]
    assert selection.start_sigma(X) == pytest.approx(selection.START_RATIO * np.median(d))
    assert selection.start_sigma(X[:1]) == 1.0


def test_a_best_sigma_at_an_edge_is_followed_outwards_until_the_error_rises(methane):
    train, valid = split(methane.sample)
    _, full = search(methane.z, train, valid, GRID, extend=False, patience=len(GRID), search="grid")
    interior = min(full, key=lambda s: s.f_mae).sigma
    above = [s for s in GRID if s > interior]
    best, scores = search(methane.z, train, valid, above[:3])
    extended = [s for s in scores if s.stage == "extension"]
    assert extended and all(s.sigma < above[0] for s in extended)
    assert best.sigma == pytest.approx(interior)  # found again below the given grid
    assert extended[-1].f_mae > min(s.f_mae for s in scores)  # stopped at the rise
    below = [s for s in GRID if s < interior]
    best_up, up_scores = search(methane.z, train, valid, below[-2:])
    assert best_up.sigma == pytest.approx(interior)
    assert all(s.sigma > below[-1] for s in up_scores if s.stage == "extension")
    _, fixed = search(methane.z, train, valid, above[:3], extend=False)
    assert [s.stage for s in fixed] == ["bracket"] * len(fixed)  # the default search


def test_extension_is_bounded(methane):
    train, valid = split(methane.sample)
    _, scores = search(methane.z, train, valid, [1000.0, 2000.0], max_extensions=2)
    assert [s.stage for s in scores].count("extension") == 2


def test_warm_started_solve_agrees_with_a_cold_one(methane):
    R, _, F = methane.sample(25)
    perms = find_permutations(R, methane.z)
    tril = np.array([descriptor_permutation(p) for p in perms])
    X, G = descriptor_and_jacobian(R)
    J = dense_jacobian(G)
    y = F.ravel() / F.std()
    options = IterativeOptions(tol=1e-6, n_inducing=6)
    neighbour, _ = solve_iterative(X, J, tril, 2.0, y, 1e-10, 6, options)
    cold, cold_info = solve_iterative(X, J, tril, 2.5, y, 1e-10, 6, options)
    warm, warm_info = solve_iterative(X, J, tril, 2.5, y, 1e-10, 6, options, x0=neighbour)
    assert warm_info["warm_start"] and not cold_info["warm_start"]
    assert warm_info["residual"] <= 1e-6 and cold_info["residual"] <= 1e-6
    # both solve the same system to the tolerance: they agree to its conditioning
    np.testing.assert_allclose(warm, cold, rtol=0, atol=1e-3 * np.abs(cold).max())
    assert warm_info["iterations"] <= cold_info["iterations"]
    # a useless start (orthogonal to y after scaling) is no worse than zero
    _, zero_info = solve_iterative(X, J, tril, 2.5, y, 1e-10, 6, options, x0=np.zeros_like(y))
    assert not zero_info["warm_start"] and zero_info["iterations"] == cold_info["iterations"]


def test_a_nested_subset_search_picks_the_full_searchs_sigma(methane, gfn2_methane_dimer):
    """Selection on half the training set, then one fit on all of it: the same σ as the
    full search on these cases, and the final model holds every training geometry."""
    train, valid = split(methane.sample, n_train=40)
    for z, tr, va in [(methane.z, train, valid), gfn2_methane_dimer]:
        full_best, _ = search(z, tr, va, GRID, patience=len(GRID), search="grid")
        best, scores = search(z, tr, va, GRID, patience=len(GRID), subset=len(tr[0]) // 2)
        assert best.sigma == full_best.sigma
        assert best.X_train_.shape[0] == len(tr[0])
        assert all(s.stage.startswith("subset_") for s in scores[:-1])
        assert scores[-1].stage == "refit" and scores[-1].sigma == best.sigma
        np.testing.assert_allclose(best.alpha_, full_best.alpha_, rtol=1e-6, atol=1e-9)


def test_the_chosen_model_does_not_pin_the_searchs_kernel_memory(methane):
    """Kept models (a learning curve keeps every part's) must not hold the (3N·M)² scratch."""
    train, valid = split(methane.sample)
    for subset in (None, 20):
        best, _ = search(methane.z, train, valid, [1.0, 2.0, 4.0], solver="analytic", subset=subset)
        assert best.kernel_buffer is None
        assert not any(
            isinstance(v, np.ndarray) and v.size >= best.alpha_.size**2 for v in vars(best).values()
        )
        (R, F, E), (Rv, _, _) = train, valid
        plain = GDMLModel(sigma=best.sigma, perms="none", solver="analytic").fit(R, methane.z, F, E)
        np.testing.assert_array_equal(best.predict(Rv)[1], plain.predict(Rv)[1])


def walled_methane(seed: int = 2):
    """Morse methane (thermal noise 0.04 Å) with a few wall frames, one C–H bond pressed to
    0.6 of its length: C–H1 in 3 of 40 training frames, C–H2 in 2 of 40 validation and 20 of
    400 test frames. Wall forces reach ~250 kcal/mol/Å against a median of ~7."""
    mol = MorseMolecule("CH4", seed=seed, noise=0.04)
    rng = np.random.default_rng(seed + 100)

    def frames(n: int, n_wall: int, h: int):
        R, E, F = mol.sample(n)
        wall = rng.choice(n, n_wall, replace=False)
        R[wall, h] = R[wall, 0] + 0.6 * (R[wall, h] - R[wall, 0])
        E[wall], F[wall] = morse_energy_forces(R[wall], mol.R_ref)
        return R, F, E

    return mol.z, frames(40, 3, 1), frames(40, 2, 2), frames(400, 20, 2)


def test_a_few_wall_frames_do_not_pull_sigma_down():
    """Heavy-tailed validation forces: the force RMSE (the former criterion) is lowest at a
    σ 32× below the force MAE's, where the test MAE is ~50 % worse. The search keeps the
    MAE's σ, and its scores name the criterion."""
    z, train, valid, (Rt, Ft, _) = walled_methane()
    best, scores = search(z, train, valid, GRID, extend=False, patience=len(GRID), search="grid")
    by_rmse = min(scores, key=lambda s: s.f_rmse).sigma
    assert best.sigma == min(scores, key=lambda s: s.f_mae).sigma >= 16 * by_rmse
    assert {s.criterion for s in scores} == {F_MAE}
    (R, F, E), F_rmse_model = train, GDMLModel(sigma=by_rmse, perms="none")
    F_rmse_model.fit(R, z, F, E)
    assert mae(best.predict(Rt)[1], Ft) < 0.8 * mae(F_rmse_model.predict(Rt)[1], Ft)


def test_force_r2_is_one_for_exact_forces_and_zero_for_their_mean(methane):
    """R² over all force components, as the scores record it for the validation set."""
    F = methane.sample(10)[2]
    assert r2(F, F) == 1.0
    assert r2(np.full_like(F, F.mean()), F) == pytest.approx(0.0, abs=1e-12)
    assert r2(F + 2 * F.std(), F) == pytest.approx(-3.0)  # off by two standard deviations
    train, valid = split(methane.sample)
    best, (score,) = search(methane.z, train, valid, [8.0], extend=False)
    (Rv, Fv, _) = valid
    assert score.f_r2 == pytest.approx(r2(best.predict(Rv)[1], Fv))
    assert 0.9 < score.f_r2 < 1.0


def test_no_sigma_below_the_kernel_floor_is_tried(methane, caplog):
    """A validation set that repeats the training geometries rewards ever smaller σ (its
    error falls ~10× per halving): the extension stops at the floor, where the kernel
    between neighbouring training geometries, κ(d_nn), falls to KERNEL_FLOOR. Grid values
    below the floor are skipped, all but the largest if none is above it."""
    R, E, F = methane.sample(30)
    data = (R, F, E)
    d_nn = nearest_neighbour_distance(R, np.arange(5)[None])
    floor = sigma_floor(d_nn)
    assert matern(d_nn, floor) == pytest.approx(KERNEL_FLOOR)
    best, scores = search(methane.z, data, data, [0.5, 1.0], max_extensions=10)
    tried = sorted(s.sigma for s in scores)
    assert floor <= tried[0] < 2 * floor  # stopped by the floor, not by max_extensions
    assert best.sigma == tried[0]
    assert all(s.sigma_floor == floor and s.kernel_nn >= KERNEL_FLOOR for s in scores)
    assert "the floor" in caplog.text and "stops the extension" in caplog.text
    _, scores = search(methane.z, data, data, [floor / 8, floor / 4, 1.0], extend=False)
    assert [s.sigma for s in scores] == [1.0]
    _, scores = search(methane.z, data, data, [floor / 8, floor / 4], extend=False)
    assert [s.sigma for s in scores] == [floor / 4]
    assert "skipped" in caplog.text and "only the largest" in caplog.text
    # the permutations the kernel uses: a relabelled copy is a neighbour at distance 0
    pair = np.stack([R[0], R[0][[0, 2, 1, 3, 4]]])
    swap = np.array([[0, 1, 2, 3, 4], [0, 2, 1, 3, 4]])
    assert nearest_neighbour_distance(pair, swap) == pytest.approx(0.0, abs=1e-6)
    assert nearest_neighbour_distance(pair, swap[:1]) > 0.01


@pytest.mark.parametrize("perms", ["auto", "none"], ids=["24 perms", "no perms"])
def test_sigma_independent_terms_computed_once_give_every_sigma_a_fit_from_scratch(methane, perms):
    """One TrainingGeometry for a σ grid: its kernel terms, computed at the first σ and
    only read after, give bitwise the kernel and coefficients of a fit from scratch."""
    R, E, F = methane.sample(12)
    group = GDMLModel(sigma=1.0, perms=perms).resolve_perms(R, methane.z)
    geometry = TrainingGeometry(R, group, cache_bytes=2**30)
    blocks, X, J, tril = geometry.blocks, geometry.X, geometry.J, geometry.tril_perms
    assert len(tril) == (24 if perms == "auto" else 1)
    for k, sigma in enumerate([0.5, 1.0, 2.0, 4.0, 8.0]):
        if k == 1:  # everything is cached: computing a term again would fail
            filled = blocks.cached_bytes
            blocks._terms = None
        K = assemble_kernel(X, J, tril, sigma, blocks=blocks)
        np.testing.assert_array_equal(np.triu(K), np.triu(assemble_kernel(X, J, tril, sigma)))
        cached = GDMLModel(sigma=sigma, perms=group).fit(R, methane.z, F, E, geometry=geometry)
        fresh = GDMLModel(sigma=sigma, perms=perms).fit(R, methane.z, F, E)
        np.testing.assert_array_equal(cached.alpha_, fresh.alpha_)
        assert cached.c_ == fresh.c_
    assert 0 < blocks.cached_bytes == filled <= 2**30
    with pytest.raises(ModelError, match="other geometries"):
        GDMLModel(sigma=1.0, perms=group).fit(R[:-1], methane.z, F[:-1], geometry=geometry)


def test_the_kernel_cache_stays_within_its_budget(methane, monkeypatch):
    """A budget below the whole cache keeps what fits (nothing at 0, today's path), with
    the same kernel; the σ search keeps it within kernel_cache_bytes: the memory the
    workflow grants for max_perms permutations beyond the group's (next to nothing
    without symmetries, where it grants for one), never past max_memory_gb."""
    R, E, F = methane.sample(12)
    group = GDMLModel(sigma=1.0).resolve_perms(R, methane.z)
    whole = TrainingGeometry(R, group, cache_bytes=2**30)
    X, J, tril = whole.X, whole.J, whole.tril_perms
    assemble_kernel(X, J, tril, 1.0, blocks=whole.blocks)
    for budget in (0, whole.blocks.cached_bytes // 3):
        geometry = TrainingGeometry(R, group, cache_bytes=budget)
        for sigma in (1.0, 2.0):
            K = assemble_kernel(X, J, tril, sigma, blocks=geometry.blocks)
            np.testing.assert_array_equal(np.triu(K), np.triu(assemble_kernel(X, J, tril, sigma)))
        assert geometry.blocks.cached_bytes <= budget
        assert (geometry.blocks.cached_bytes > 0) == (budget > 0)
    built = []
    monkeypatch.setattr(
        selection, "TrainingGeometry", lambda *a: built.append(TrainingGeometry(*a)) or built[-1]
    )
    Rv, Ev, Fv = methane.sample(10)
    for perms, granted in (("auto", 2048), ("none", 1)):
        select_sigma(R, methane.z, F, E, Rv, Fv, Ev, [1.0, 2.0], perms=perms, extend=False)
        P = len(built[-1].perms)
        budget = kernel_cache_bytes(len(R), 5, P, granted, 16.0)
        assert built[-1].blocks.cache_bytes == budget
        assert built[-1].blocks.cached_bytes <= budget
        assert (budget > 2**22) if perms == "auto" else (budget < 2**20)  # MiB rounding
    assert kernel_cache_bytes(len(R), 5, 24, 2048, max_memory_gb=0.3) == 0  # nothing past it
