"""The paper's config validates and plans, with the jobs its systems call for."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from deltagdml.data.systems import model_parts
from deltagdml.workflow.checks import check_config
from deltagdml.workflow.config import dynamics_settings, sampling_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "workflow" / "configs" / "paper.yaml"


def planned_jobs() -> dict[str, int]:
    """Job counts of ``snakemake -n`` on the paper config, by rule."""
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(CONFIG)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    table = run.stdout.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_paper_config_plans_the_expected_jobs():
    config = yaml.safe_load(CONFIG.read_text())
    systems = check_config(config, ROOT)
    n = len(systems)
    sampled = [name for name in systems if "dataset" not in config["systems"][name]]
    parts = {name: model_parts(system) for name, system in systems.items()}
    md = {name: dynamics_settings(config, name) for name in systems}
    expected = {
        "sample_replica": sum(len(sampling_settings(config, s).temperatures_K) for s in sampled),
        "label_chunk": config["labelling"]["n_chunks"] * len(sampled),
        "train_model": sum(len(p) for p in parts.values()),
        # the full, nonint and binding datasets and one per multi-atom fragment
        "delta_dataset": sum(len(p) + 1 for p in parts.values()),
        "md_run": sum(len(s.models) * len(s.temperatures_K) for s in md.values()),
        # a card per trained model and one for the Δ model
        "model_card": sum(len(p) + 1 for p in parts.values()),
        "evaluate": n,
        "delta_model": n,
        "summarise": 1,
    }
    jobs = planned_jobs()
    assert {rule: jobs.get(rule) for rule in expected} == expected
    assert n == 5 and expected["md_run"] == 50  # four small complexes and C60, 5 T × 2 models
