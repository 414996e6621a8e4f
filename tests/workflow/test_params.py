"""Rule params hold what a step reads and nothing else (see ``workflow/rules/*.smk``), so
that a config change reruns only the steps that read it."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from deltagdml.workflow.config import (
    dynamics_settings,
    part_train_sizes,
    sampling_settings,
    selection_cv_settings,
    setting_paths,
    step_config,
    train_pool_size,
    training_settings,
)

CV2 = {"kind": "atoms", "atoms": [0, 12]}
CONFIG = {
    "seed": 3,
    "reference": {"name": "tblite", "method": "GFN2-xTB"},
    "sampling": {"temperatures_K": [200, 400], "n_frames": 40, "selection": "cv"},
    "training": {
        "n_train": 30,
        "sigmas": [5, 20],
        "parts": {"binding": {"n_train": 10}, "fragment_0": {"sigmas": [10]}},
    },
    "dynamics": {"temperatures_K": [100], "duration_ps": 0.5, "analysis": {"fes_bins": 12}},
    "analysis": {"learning_curve_sizes": [5, 10]},
    "systems": {
        "wb": {
            "preset": "water_benzene",
            "label": "W–B",
            "training": {"n_valid": 7, "parts": {"fragment_0": {"lam": 1e-8}}},
            "dynamics": {"stride": 2, "analysis": {"cv2": CV2}},
        },
        "c60": {"preset": "c60_buckycatcher"},
    },
}


def test_paths_pick_from_the_global_and_the_systems_sections():
    paths = ("seed", "dynamics.analysis.cv2", "training.parts.*.n_train")
    assert step_config(CONFIG, "wb", paths) == {
        "seed": 3,
        "training": {"parts": {"binding": {"n_train": 10}}},  # sections left empty are left out
        "systems": {"wb": {"preset": "water_benzene", "dynamics": {"analysis": {"cv2": CV2}}}},
    }
    whole = step_config(CONFIG, "wb", ("reference", "dynamics"))
    assert whole["dynamics"] == CONFIG["dynamics"]
    assert whole["systems"]["wb"] == {
        "preset": "water_benzene",
        "dynamics": CONFIG["systems"]["wb"]["dynamics"],
    }
    assert "label" not in step_config(CONFIG, "wb", ())["systems"]["wb"]


def test_selection_cvs_are_resolved_and_ignore_the_md_study():
    assert selection_cv_settings(CONFIG, "wb") == {"guest_fragment": "auto", "cv2": CV2}
    assert selection_cv_settings(CONFIG, "c60")["cv2"] == {"kind": "pincer"}  # the preset's
    study = copy.deepcopy(CONFIG)
    study["dynamics"] |= {
        "enabled": False,
        "duration_ps": 3.0,
        "temperatures_K": [50, 500],
        "models": ["full"],
        "stride": 20,
        "stability": {"bond_stretch": 2.0},
        "analysis": {"fes_bins": 40, "equilibration_ps": 0.1},
    }
    for name in ("wb", "c60"):
        assert selection_cv_settings(study, name) == selection_cv_settings(CONFIG, name)
    study["dynamics"]["analysis"]["guest_fragment"] = 0
    assert selection_cv_settings(study, "c60")["guest_fragment"] == 0


@pytest.mark.parametrize("part", ["full", "fragment_0", "binding"])
def test_a_training_job_reads_its_own_part_alone(part):
    paths = (*setting_paths("training"), f"training.parts.{part}")
    params = step_config(CONFIG, "wb", paths)
    assert training_settings(params, "wb", part) == training_settings(CONFIG, "wb", part)
    other = copy.deepcopy(CONFIG)
    other["training"]["parts"]["fragment_9"] = {"sigmas": [1]}
    assert step_config(other, "wb", paths) == params


def test_pruned_params_resolve_to_the_same_settings():
    """What each step reads from its params is what it would read from the whole config."""
    split = (
        "seed",
        "training.n_train",
        "training.n_valid",
        "training.n_test",
        "training.parts.*.n_train",
    )
    params = step_config(CONFIG, "wb", split)
    parts = ["full", "fragment_0", "fragment_1", "binding"]
    assert train_pool_size(params, "wb") == train_pool_size(CONFIG, "wb")
    assert part_train_sizes(params, "wb", parts) == part_train_sizes(CONFIG, "wb", parts)
    assert training_settings(params, "wb").n_valid == 7

    unread = ("enabled", "models", "temperatures_K", "analysis")
    md = dynamics_settings(step_config(CONFIG, "wb", setting_paths("dynamics", unread)), "wb")
    full = dynamics_settings(CONFIG, "wb")
    assert dataclasses.replace(md, **{k: getattr(full, k) for k in unread}) == full

    sampler = step_config(CONFIG, "wb", ("reference", *setting_paths("sampling", ("selection",))))
    assert sampling_settings(sampler, "wb") == dataclasses.replace(
        sampling_settings(CONFIG, "wb"), selection="time"
    )
    card = step_config(CONFIG, "wb", ("reference", "sampling.calculator"))
    assert sampling_settings(card, "wb").calculator == sampling_settings(CONFIG, "wb").calculator
