"""Active learning: start geometries, candidates, diverse selection, the growing pool, the
round decision, and one round on a small Δ model that lowers its own uncertainty."""

import numpy as np
import pytest
from conftest import morse_energy_forces

from deltagdml.active.candidates import collect, select
from deltagdml.active.explore import explore, is_failure, start_indices
from deltagdml.active.pool import append_labels, grow_splits
from deltagdml.active.rounds import decision, exploration_rows
from deltagdml.data.splits import train_indices
from deltagdml.errors import DatasetError
from deltagdml.gdml.composite import DeltaModel
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.uncertainty import farthest_points
from deltagdml.settings import ActiveLearningSettings, StabilitySettings
from deltagdml.workflow.steps.loop import neighbour_sigmas

WATER = np.array([[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])
R_REF = np.vstack([WATER, WATER + [0.0, 0.0, 3.0]])
Z = np.array([8, 1, 1, 8, 1, 1])
FRAGMENTS = [np.arange(3), np.arange(3, 6)]


def exploration(ratios: dict[str, list[list[float]]], reasons: list[str], T: float = 300.0):
    """An exploration file's arrays: per run, per frame ratios of each part."""
    runs = list(range(len(reasons)))
    n = [len(ratios[next(iter(ratios))][r]) for r in runs]
    out = {
        "run": np.concatenate([np.full(k, r) for r, k in zip(runs, n, strict=True)]),
        "time_ps": np.concatenate([0.01 * np.arange(k) for k in n]),
        "R": np.random.default_rng(0).normal(size=(sum(n), 6, 3)) + R_REF,
        "reasons": reasons,
        "temperature_K": T,
    }
    out |= {f"ratio_{p}": np.concatenate(v) for p, v in ratios.items()}
    return out


def test_starts_spread_over_the_training_energies():
    E = np.array([5.0, 1.0, 3.0, 2.0, 4.0, 0.0])
    train = np.array([0, 1, 2, 3, 4])
    np.testing.assert_array_equal(start_indices(E, train, 3), [1, 2, 0])
    assert len(start_indices(E, train, 10)) == 5


def test_candidates_are_frames_above_a_threshold_and_before_failures():
    data = exploration(
        {
            "binding": [[0.2, 0.5, 1.4, 2.5], [0.1, 0.2, 0.3, 0.4, 0.9]],
            "fragment_0": [[0.1, 0.1, 0.2, 0.3], [0.1, 0.1, 0.1, 1.2, 9.0]],
        },
        ["uncertainty: binding at 2.50× its threshold (limit 2×)", "atom clash: atoms 0–4"],
    )
    c = collect([data], pre_failure_frames=2)
    assert c.parts == ["binding", "fragment_0"]
    # run 0: frames 2 and 3 (above 1); run 1: frames 2, 3 before the failing frame 4
    np.testing.assert_array_equal(c.source[:, 1:], [[0, 2], [0, 3], [1, 2], [1, 3]])
    np.testing.assert_array_equal(c.before_failure, [False, False, True, True])
    # a frame goes to the parts above their threshold; a pre-failure frame flagged by no
    # part goes to every part
    np.testing.assert_array_equal(
        c.needs(), [[True, False], [True, False], [True, True], [False, True]]
    )
    assert is_failure("atom clash") and not is_failure("uncertainty: x") and not is_failure("")


def test_farthest_points_are_diverse_deterministic_and_within_budget():
    X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [10.0]])
    identity = np.arange(1)[None]
    np.testing.assert_array_equal(farthest_points(X, identity, 3, first=0), [0, 3, 5])
    assert len(farthest_points(X, identity, 10, first=0)) == 6
    data = exploration({"binding": [[1.5, 3.0, 1.2]]}, ["uncertainty: binding"])
    chosen = select(collect([data], 0), budget=1)
    np.testing.assert_array_equal(chosen, [1])  # the largest ratio first


def test_decision_stops_when_every_run_stays_in_its_data():
    calm = exploration({"binding": [[0.2, 0.9]]}, [""])
    assert decision([calm], 0)["converged"] and not decision([calm], 0)["continue"]
    hot = exploration({"binding": [[0.2, 1.9]]}, [""], T=400.0)
    out = decision([calm, hot], 1)
    assert not out["converged"] and out["continue"] and out["largest_ratio"] == 1.9
    failed = exploration({"binding": [[0.2, 0.3]]}, ["bond stretch"])
    stalled = decision([failed], 0)  # a failure with nothing to label
    assert not stalled["converged"] and not stalled["continue"] and stalled["failed_runs"] == 1
    rows = exploration_rows([calm, hot, failed])
    assert np.isnan(rows[0]["first_left_data_ps"]) and np.isnan(rows[0]["first_failure_ps"])
    assert rows[1]["first_left_data_ps"] == pytest.approx(0.01)
    assert rows[2]["failed"] == 1 and rows[2]["first_failure_ps"] == pytest.approx(0.01)


def test_accept_ratio_moves_both_convergence_and_what_is_labelled():
    """With accept_ratio 2, a hot run at 1.9× its threshold ends the loop; at 1.5, only
    frames above 1.5 are collected, and only the parts above 1.5 need them."""
    calm = exploration({"binding": [[0.2, 0.9]]}, [""])
    hot = exploration({"binding": [[0.2, 1.9]]}, [""], T=400.0)
    assert decision([calm, hot], 0, accept_ratio=2.0)["converged"]
    assert "under 2 × the thresholds" in decision([calm, hot], 0, accept_ratio=2.0)["reason"]
    assert not decision([calm, hot], 1, accept_ratio=1.5)["converged"]
    data = exploration(
        {"binding": [[1.2, 1.6, 0.4]], "fragment_0": [[0.3, 1.7, 1.4]]}, ["uncertainty: x"]
    )
    c = collect([data], 0, accept_ratio=1.5)
    np.testing.assert_array_equal(c.source[:, 2], [1])
    np.testing.assert_array_equal(c.needs(), [[True, True]])
    assert len(collect([data], 0).R) == 3


def test_pool_grows_only_the_parts_that_need_frames():
    def labels(n: int, start: float) -> dict:
        R = np.full((n, 6, 3), start) + np.arange(n)[:, None, None]
        return {
            "R": R,
            "z": Z,
            "frame_index": np.arange(n),
            "n_fragments": 2,
            "frag_idx_0": FRAGMENTS[0],
            "frag_idx_1": FRAGMENTS[1],
        }

    pooled = append_labels(labels(10, 0.0), labels(3, 100.0))
    np.testing.assert_array_equal(pooled["frame_index"], np.arange(13))
    np.testing.assert_array_equal(pooled["R"][10:], labels(3, 100.0)["R"])
    other = labels(3, 100.0) | {"z": Z[::-1]}
    with pytest.raises(DatasetError, match="'z'"):
        append_labels(labels(10, 0.0), other)
    splits = {"train": np.arange(6), "valid": np.array([6, 7]), "test": np.array([8, 9])}
    needs = {"binding": np.array([True, True, False]), "fragment_0": np.array([False, False, True])}
    grown = grow_splits(splits, 10, needs)
    np.testing.assert_array_equal(grown["valid"], splits["valid"])
    np.testing.assert_array_equal(grown["test"], splits["test"])
    np.testing.assert_array_equal(train_indices(grown, "binding"), [0, 1, 2, 3, 4, 5, 10, 11])
    np.testing.assert_array_equal(train_indices(grown, "fragment_0"), [0, 1, 2, 3, 4, 5, 12])
    np.testing.assert_array_equal(train_indices(grown, "full"), [0, 1, 2, 3, 4, 5, 10, 11, 12])


def test_retraining_searches_around_the_previous_sigma():
    assert neighbour_sigmas((2, 5, 10, 20), 10) == [5, 10, 20]
    assert neighbour_sigmas((2, 5, 10, 20), 20) == [10, 20, 40]
    assert neighbour_sigmas((2, 5, 10, 20), 2) == [0.8, 2, 5]


def _labels(R):
    E, F = morse_energy_forces(R, R_REF)
    parts = [morse_energy_forces(R[:, f], R_REF[f]) for f in FRAGMENTS]
    E_b = E - sum(p[0] for p in parts)
    F_b = F.copy()
    for f, p in zip(FRAGMENTS, parts, strict=True):
        F_b[:, f] -= p[1]
    return parts, (E_b, F_b)


def _fit(R_train, R_valid):
    parts, (E_b, F_b) = _labels(R_train)
    models = {
        f"fragment_{k}": GDMLModel(sigma=2.0).fit(R_train[:, f], Z[f], p[1], p[0])
        for k, (f, p) in enumerate(zip(FRAGMENTS, parts, strict=True))
    }
    models["binding"] = GDMLModel(sigma=2.0).fit(R_train, Z, F_b, E_b)
    for k, f in enumerate(FRAGMENTS):
        models[f"fragment_{k}"].calibrate_uncertainty(R_valid[:, f], 1.0, 1.5)
    models["binding"].calibrate_uncertainty(R_valid, 1.0, 1.5)
    return DeltaModel.from_parts(Z, FRAGMENTS, models, {})


def test_one_round_adds_frames_to_the_binding_model_and_lowers_its_uncertainty():
    """Data only near one dimer distance; hot MD leaves it along the intermolecular
    coordinate; the frames that left go to the binding model, whose retrained version is
    certain where the old one was not."""
    rng = np.random.default_rng(0)
    R = R_REF + rng.normal(scale=0.02, size=(40, 6, 3))
    delta = _fit(R[:30], R[30:])
    settings = ActiveLearningSettings(duration_ps=0.3, stride=5, n_starts=2, budget=6)
    criteria = StabilitySettings(com_margin_A=2.0)
    runs = explore(delta, FRAGMENTS, R[:2], 600.0, settings, criteria, [[0, 1], [0, 2]])
    data = {
        "run": np.concatenate([np.full(len(r["time_ps"]), i) for i, r in enumerate(runs)]),
        "time_ps": np.concatenate([r["time_ps"] for r in runs]),
        "R": np.concatenate([r["R"] for r in runs]),
        "reasons": [r["reason"] for r in runs],
        "temperature_K": 600.0,
    }
    data |= {k: np.concatenate([r[k] for r in runs]) for k in runs[0] if k.startswith("ratio_")}
    assert any(r["reason"].startswith("uncertainty: binding") for r in runs)
    candidates = collect([data], pre_failure_frames=2)
    chosen = select(candidates, settings.budget)
    needs = candidates.needs()[chosen]
    binding = candidates.parts.index("binding")
    assert 0 < len(chosen) <= settings.budget and needs[:, binding].all()
    added = candidates.R[chosen]
    before = delta.binding.predict_std(added)
    retrained = _fit(np.concatenate([R[:30], added]), R[30:])
    after = retrained.binding.predict_std(added)
    assert np.all(after < 0.1 * before)
    assert decision([data], len(chosen))["continue"]
