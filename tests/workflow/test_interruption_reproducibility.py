"""Killing the workflow mid-run and rerunning gives the results of an uninterrupted run;
two runs of the same config and seed give byte-identical tables and model files.

Bit-for-bit identity holds for the same number of cores: threaded BLAS (Cholesky,
prediction) rounds differently with another thread count (relative differences ~1e-12).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [
    sys.executable,
    "-m",
    "snakemake",
    "--snakefile",
    str(ROOT / "Snakefile"),
    "--configfile",
    "config.yaml",
]
pytestmark = pytest.mark.slow


def make_workdir(path: Path) -> Path:
    config = yaml.safe_load((ROOT / "workflow" / "configs" / "tiny.yaml").read_text())
    config["results"] = "results"
    config["systems"] = {"water_benzene": config["systems"]["water_benzene"]}
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    return path


def run(work: Path, *args: str) -> None:
    proc = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", *args], cwd=work, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def outputs(work: Path) -> dict[str, bytes]:
    """Every result file except logs and wall-clock timing records."""
    results = work / "results"
    return {
        str(p.relative_to(results)): p.read_bytes()
        for p in sorted(results.rglob("*"))
        if p.is_file()
        and p.parts[len(results.parts)] not in ("logs", "benchmarks")
        and not p.name.endswith(("_timing.csv", "training_times.csv"))
    }


def kill_when(work: Path, marker: str) -> None:
    """Start the workflow and SIGKILL it (with all its jobs) once ``marker`` exists."""
    proc = subprocess.Popen(
        [*SNAKEMAKE, "--cores", "2"],
        cwd=work,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (work / marker).exists():
        assert proc.poll() is None, "workflow finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work = make_workdir(tmp_path_factory.mktemp("repro") / "a")
    run(work)
    return outputs(work)


def test_same_config_and_seed_give_identical_files(reference, tmp_path):
    work = make_workdir(tmp_path / "b")
    run(work)
    again = outputs(work)
    assert again.keys() == reference.keys()
    different = [name for name in reference if again[name] != reference[name]]
    assert not different, f"files differ between identical runs: {different}"
    assert any(name.startswith("water_benzene/models/") for name in reference)


def test_changed_seed_changes_the_split(reference, tmp_path):
    work = make_workdir(tmp_path / "seed")
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["seed"] = 1
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    run(work, "results/water_benzene/splits.npz")
    with np.load(work / "results" / "water_benzene" / "splits.npz") as f:
        new = f["idxs_train"]
    ref_path = tmp_path / "ref_splits.npz"
    ref_path.write_bytes(reference["water_benzene/splits.npz"])
    with np.load(ref_path) as f:
        assert not np.array_equal(new, f["idxs_train"])


@pytest.mark.parametrize(
    ("marker", "unfinished"),
    [
        ("logs/water_benzene/label_chunk_1.log", "water_benzene/data/labels/chunk_1.npz"),
        ("logs/water_benzene/train_full.log", "water_benzene/models/full.npz"),
    ],
    ids=["during-labelling", "during-training"],
)
def test_sigkill_then_rerun_gives_uninterrupted_results(reference, tmp_path, marker, unfinished):
    work = make_workdir(tmp_path / "killed")
    kill_when(work, f"results/{marker}")
    assert not (work / "results" / unfinished).exists(), "the step finished before the kill"
    # nothing half-written is left under a final name: every npz present is readable
    for path in (work / "results").rglob("*.npz"):
        with np.load(path, allow_pickle=False) as f:
            f.files  # noqa: B018 - opening the archive checks its directory
    subprocess.run([*SNAKEMAKE, "--unlock"], cwd=work, capture_output=True, timeout=120)
    run(work, "--rerun-incomplete")
    resumed = outputs(work)
    assert resumed.keys() == reference.keys()
    assert [n for n in reference if resumed[n] != reference[n]] == []
