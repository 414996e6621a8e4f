"""Bad input is refused at the door: `snakemake -n` names the key; the repository stands alone."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import morse_energy_forces

from deltagdml.errors import ConfigError
from deltagdml.workflow.checks import check_results_path

ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "workflow" / "configs" / "tiny.yaml").read_text())


def dry_run(work: Path, *args: str) -> subprocess.CompletedProcess:
    """`snakemake -n` of this checkout's workflow in ``work`` (no jobs run)."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [*cmd, *args], cwd=work, capture_output=True, text=True, timeout=300, env=env
    )


def write_dataset(
    path: Path, n: int, *, forces: bool = True, nan: bool = False, seed: int = 0
) -> None:
    """A water-on-benzene dataset (preset atom order) with ``n`` geometries."""
    from deltagdml.data.systems import DEFAULT_SYSTEMS, system_from_config

    system = system_from_config("water_benzene", DEFAULT_SYSTEMS["water_benzene"])
    rng = np.random.default_rng(seed)
    R = system.atoms.positions + rng.normal(0, 0.02, (n, system.n_atoms, 3))
    E, F = morse_energy_forces(R, system.atoms.positions)  # labels consistent with each other
    arrays = {"R": R, "z": system.z, "E": E}
    if forces:
        arrays["F"] = F
    if nan:
        arrays["E"][3] = np.nan
    np.savez(path, **arrays)


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` merged in, mapping by mapping; systems and calculators
    are replaced."""
    out = dict(base)
    for key, value in changes.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        replace = key in ("systems", "reference", "calculator")
        out[key] = merged(base[key], value) if nested and not replace else value
    return out


def with_system(entry: dict) -> dict:
    return {"systems": {"water_benzene": {"preset": "water_benzene", **entry}}}


# (case id, config changes on top of tiny.yaml, the message the one-line refusal must hold)
BAD_CONFIGS = [
    ("results empty", {"results": ""}, "results: must name a folder"),
    ("results root", {"results": "/"}, "is the filesystem root"),
    ("results workdir", {"results": "."}, "is the working directory itself"),
    ("reference class", {"reference": {"name": "ase", "class": "ase.nope:X"}}, "cannot import"),
    ("reference kwargs", {"reference": {"name": "tblite", "accuracy": "high"}}, "accuracy must"),
    (
        "ase kwargs",
        {"reference": {"name": "ase", "class": "ase.calculators.lj:LennardJones", "kwargs": 3}},
        "config key 'reference.kwargs': 3 is not of type 'object'",
    ),
    ("sampler class", {"sampling": {"calculator": {"name": "orca"}}}, "sampling.calculator"),
    ("symmetries typo", {"training": {"symmetries": "atuo"}}, "training.symmetries must be"),
    ("symmetries file", {"training": {"symmetries": "nope.npy"}}, "existing .npy file"),
    ("unknown part", {"training": {"parts": {"fragment_3": {"n_train": 5}}}}, "training.parts"),
    ("too many chunks", {"labelling": {"n_chunks": 61}}, "labelling.n_chunks = 61 exceeds"),
    ("splits too large", {"training": {"n_train": 50}}, "exceeds the 60 sampled frames"),
    ("descriptor frames", {"analysis": {"descriptor_frames": [0, 60]}}, "has only 60 frames"),
    (
        "guest fragment",
        with_system({"dynamics": {"analysis": {"guest_fragment": 5}}}),
        "guest_fragment 5",
    ),
    (
        "cv2 atoms",
        with_system({"dynamics": {"analysis": {"cv2": {"kind": "atoms", "atoms": [0, 15]}}}}),
        "out of range for 15 atoms",
    ),
    ("overlapping fragments", with_system({"fragments": ["0-11", "11-14"]}), "fragment"),
    ("missing atoms", with_system({"fragments": ["0-11", "12-13"]}), "atom"),
    ("dataset missing", with_system({"dataset": "none.npz"}), "file 'none.npz' not found"),
    ("dataset without forces", with_system({"dataset": "noforces.npz"}), "missing key(s) ['F']"),
    ("dataset NaN labels", with_system({"dataset": "nan.npz"}), "NaN"),
    ("dataset too small", with_system({"dataset": "small.npz"}), "exceeds the 30 geometries"),
    (
        "fragment labels count",
        with_system({"dataset": "good.npz", "fragment_labels": ["good.npz"]}),
        "1 files for 2 fragments",
    ),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("door")
    write_dataset(work / "noforces.npz", 80, forces=False)
    write_dataset(work / "nan.npz", 80, nan=True)
    write_dataset(work / "small.npz", 30)
    write_dataset(work / "good.npz", 80)
    return work


@pytest.mark.parametrize(
    ("changes", "message"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_dry_run_refuses_bad_config_with_one_line(workdir, changes, message):
    config = merged({**TINY, "results": "results"}, changes)
    (workdir / "bad.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    proc = dry_run(workdir, "--configfile", "bad.yaml")
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert message in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and 'File "' not in proc.stderr, proc.stderr[-3000:]
    assert not (workdir / "results").exists()


def test_good_user_dataset_and_config_overrides_plan(workdir):
    config = merged({**TINY, "results": "results"}, with_system({"dataset": "good.npz"}))
    (workdir / "good.yaml").write_text(yaml.safe_dump(config))
    proc = dry_run(workdir, "--configfile", "good.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the user's dataset is an input of the step that reads it: editing it reruns that step
    target = "results/water_benzene/data/ingested_labels.npz"
    run = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
    done = subprocess.run(
        [*run, target, "--cores", "1", "--configfile", "good.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Nothing to be done" in dry_run(workdir, target, "--configfile", "good.yaml").stdout
    write_dataset(workdir / "good.npz", 80, seed=1)  # new content (a touch alone is ignored)
    later = (workdir / target).stat().st_mtime + 10
    os.utime(workdir / "good.npz", (later, later))
    plan = dry_run(workdir, target, "--configfile", "good.yaml").stdout
    assert "Updated input files: good.npz" in plan, plan[-2000:]
    # --config alone overrides config.yaml (no --configfile): its systems stay
    shutil.copy(ROOT / "config.yaml", workdir / "config.yaml")
    proc = dry_run(workdir, "--config", "results=results_override", "seed=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "results_override/methane_dimer/splits.npz" in proc.stdout


@pytest.mark.parametrize(
    ("results", "problem"),
    [
        ("", "must name a folder"),
        ("/", "filesystem root"),
        (".", "working directory itself"),
        ("src", "inside the source tree"),
        ("workflow/rules/x", "inside the source tree"),
        ("tests", "inside the source tree"),
        ("..", "next to the workflow's own files"),
    ],
)
def test_results_path_guard(results, problem):
    with pytest.raises(ConfigError, match=problem):
        check_results_path(results, ROOT, ROOT)


def test_results_path_guard_accepts_ordinary_folders(tmp_path):
    assert check_results_path("results", ROOT, ROOT) == ROOT / "results"
    assert check_results_path(str(tmp_path / "out"), ROOT, ROOT) == tmp_path / "out"
    assert check_results_path("results", tmp_path, ROOT) == tmp_path / "results"


def tracked_files() -> list[Path]:
    proc = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [ROOT / line for line in proc.stdout.splitlines() if (ROOT / line).is_file()]


def test_no_tracked_file_names_a_path_outside_the_repository():
    outside = ["/" + "work/", "../" + "shared", "/" + "home/", "/" + "root/", "/" + "Users/"]
    found = []
    for path in tracked_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(ROOT)}: {s}" for s in outside if s in text]
    assert found == []


def test_a_clone_with_nothing_beside_it_plans_the_c60_config(tmp_path):
    clone = tmp_path / "alone" / "repo"
    for path in tracked_files():
        target = clone / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    assert sorted(p.name for p in clone.parent.iterdir()) == ["repo"]
    config = "workflow/configs/c60_buckycatcher.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", config],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "results_c60/c60_buckycatcher/dynamics/fes.npz" in proc.stdout
