"""Scheduling priorities: the system with the largest kernel matrix is started first."""

from __future__ import annotations

from pathlib import Path

import yaml

from deltagdml.workflow.checks import check_config
from deltagdml.workflow.config import system_priorities

ROOT = Path(__file__).resolve().parents[2]


def test_largest_kernel_first_and_ties_in_config_order():
    config = yaml.safe_load((ROOT / "workflow" / "configs" / "paper_sizes.yaml").read_text())
    systems = check_config(config, ROOT)
    ranks = system_priorities(config, systems)
    order = sorted(ranks, key=lambda name: -ranks[name])
    # (3N·n_train)²: benzene dimer 72,000², water–benzene 45,000², Na⁺–benzene 39,000²,
    # methane dimer 6,000²
    assert order == ["benzene_dimer", "water_benzene", "na_benzene", "methane_dimer"]
    assert sorted(ranks.values()) == list(range(len(systems)))

    # 10 atoms × 2,400 = 24 atoms × 1,000: a tie, won by the system listed first
    config["systems"]["methane_dimer"] = {
        "preset": "methane_dimer",
        "sampling": {"n_frames": 3600},
        "training": {"n_train": 2400},
    }
    tied = system_priorities(config, check_config(config, ROOT))
    assert tied["methane_dimer"] > tied["benzene_dimer"] > tied["water_benzene"]
