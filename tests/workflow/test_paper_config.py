"""The paper configs validate and plan, with the jobs their systems call for."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deltagdml.analysis.paper import PAPER_FORCE_MAE_CHANGE
from deltagdml.data.systems import model_parts
from deltagdml.workflow.checks import check_config
from deltagdml.workflow.config import (
    dynamics_settings,
    learning_curve_memory_mb,
    learning_curve_sizes,
    sampling_settings,
    training_memory_mb,
    training_settings,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "workflow" / "configs"


def dry_run(config: Path) -> str:
    """What ``snakemake -n`` on ``config`` prints."""
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def planned_jobs(config: Path) -> dict[str, int]:
    """Job counts of ``snakemake -n`` on ``config``, by rule."""
    table = dry_run(config).split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize(
    ("name", "n_systems", "n_md_runs"), [("paper.yaml", 5, 50), ("paper_sizes.yaml", 4, 0)]
)
def test_paper_config_plans_the_expected_jobs(name, n_systems, n_md_runs):
    config = yaml.safe_load((CONFIGS / name).read_text())
    systems = check_config(config, ROOT)
    n = len(systems)
    sampled = [name for name in systems if "dataset" not in config["systems"][name]]
    parts = {name: model_parts(system) for name, system in systems.items()}
    md = [dynamics_settings(config, name) for name in systems]
    expected = {
        "sample_replica": sum(len(sampling_settings(config, s).temperatures_K) for s in sampled),
        "label_chunk": config["labelling"]["n_chunks"] * len(sampled),
        "train_model": sum(len(p) for p in parts.values()),
        # the full, nonint and binding datasets and one per multi-atom fragment
        "delta_dataset": sum(len(p) + 1 for p in parts.values()),
        "md_run": sum(len(s.models) * len(s.temperatures_K) for s in md if s.enabled),
        # a card per trained model and one for the Δ model
        "model_card": sum(len(p) + 1 for p in parts.values()),
        "evaluate": n,
        "delta_model": n,
        "summarise": 1,
    }
    jobs = planned_jobs(CONFIGS / name)
    assert {rule: jobs.get(rule, 0) for rule in expected} == expected
    assert (n, expected["md_run"]) == (n_systems, n_md_runs)


def test_paper_sizes_config_trains_at_the_papers_sizes():
    """Every model of every system at the paper's n_train; ≥ 1000 test geometries."""
    config = yaml.safe_load((CONFIGS / "paper_sizes.yaml").read_text())
    for name, entry in config["systems"].items():
        n_paper = PAPER_FORCE_MAE_CHANGE[entry["preset"]][0]
        full = training_settings(config, name, "full")
        assert full.n_test >= 1000
        sizes = {training_settings(config, name, p).n_train for p in ("full", "binding")}
        assert sizes == {n_paper}


def test_a_learning_curve_job_asks_for_the_memory_of_its_largest_fit():
    """It fits every part at every size below n_train, and a smaller size can need more
    memory than n_train (water–benzene at n = 500: the dense solver, against the iterative
    one at n_train = 1000 that a training job asks for)."""
    config = yaml.safe_load((CONFIGS / "paper_sizes.yaml").read_text())
    systems = check_config(config, ROOT)
    asked = {
        m["system"]: int(m["mem"])
        for m in re.finditer(
            r"rule analysis_learning_curve:.*?wildcards: system=(?P<system>\w+)"
            r".*?mem_mb=(?P<mem>\d+)",
            dry_run(CONFIGS / "paper_sizes.yaml"),
            re.S,
        )
    }
    assert set(asked) == set(systems)
    threads = config["training_threads"]
    for name, system in systems.items():
        assert asked[name] == learning_curve_memory_mb(config, name, system, threads)
        sizes = learning_curve_sizes(config, name)
        for part in model_parts(system):
            settings = training_settings(config, name, part)
            for n in sizes:
                assert asked[name] >= training_memory_mb(system, part, settings, threads, n)
    full = training_settings(config, "water_benzene", "full")
    water = systems["water_benzene"]  # a smaller fit that needs more than the largest one
    assert training_memory_mb(water, "full", full, threads, 500) > training_memory_mb(
        water, "full", full, threads, 1000
    )
