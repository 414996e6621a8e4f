"""Sampling apart from labelling: sampler replicas, frame selection, up-front checks."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from deltagdml.data.calculators import check_calculator_spec, make_calculator
from deltagdml.data.frame_selection import (
    coverage,
    select_by_cv,
    select_evenly_in_time,
    select_frames,
)
from deltagdml.data.labelling import load_labels
from deltagdml.data.sampling import load_trajectory, sample_md
from deltagdml.errors import ConfigError
from deltagdml.settings import CalculatorSettings
from deltagdml.units import KCAL_MOL_PER_EV
from deltagdml.workflow.checks import check_config
from deltagdml.workflow.config import (
    reference_settings,
    sampling_settings,
    selection_cv_settings,
)
from deltagdml.workflow.steps import data as steps

REPO = Path(__file__).parents[2]
GFNFF = {"name": "gfnff"}


def replica_config(tmp_path: Path, **sampling) -> dict:
    return {
        "results": str(tmp_path),
        "seed": 5,
        "reference": {"name": "tblite", "method": "GFN2-xTB"},
        "sampling": {
            "calculator": GFNFF,
            "temperatures_K": [200, 400],
            "frames_per_replica": 6,
            "n_frames": 8,
            "stride": 3,
            "equilibration_steps": 0,
            "selection": "cv",
            **sampling,
        },
        "training": {"n_train": 4, "n_valid": 2, "n_test": 2},
        "systems": {"water_benzene": {"preset": "water_benzene"}},
    }


def run_sampling(config: dict, out: Path) -> dict[str, Path]:
    """Both replicas and the selection, as the workflow runs them; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {f"replica_{r}": out / f"replica_{r}.npz" for r in range(2)}
    for r in range(2):
        steps.sample_replica(
            config=config,
            system="water_benzene",
            replica=r,
            trajectory=str(paths[f"replica_{r}"]),
        )
    paths |= {key: out / f"selected.{key}" for key in ("npz", "csv", "png", "pdf")}
    steps.select_frames(
        config=config,
        cv=selection_cv_settings(config, "water_benzene"),
        system="water_benzene",
        replicas=[str(paths["replica_0"]), str(paths["replica_1"])],
        trajectory=str(paths["npz"]),
        table=str(paths["csv"]),
        png=str(paths["png"]),
        pdf=str(paths["pdf"]),
    )
    return paths


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    config = replica_config(tmp)
    return config, run_sampling(config, tmp / "a")


def test_sampler_drives_the_md_and_the_reference_labels_it(sampled, tmp_path):
    config, paths = sampled
    system = check_config(config)["water_benzene"]
    replica = load_trajectory(paths["replica_1"])
    # the replica is the sampler's (GFN-FF) trajectory, not the reference method's
    kwargs = dict(
        n_frames=6, stride=3, seed=6, restraint=sampling_settings(config, "water_benzene").restraint
    )
    gfnff = CalculatorSettings.from_config(GFNFF)
    with_sampler = sample_md(system, gfnff, 400, 0.5, **kwargs, progress=lambda m: None)
    with_reference = sample_md(
        system, reference_settings(config), 400, 0.5, **kwargs, progress=lambda m: None
    )
    np.testing.assert_array_equal(replica["R"], with_sampler["R"])
    assert not np.allclose(replica["R"], with_reference["R"], atol=1e-3)

    traj = load_trajectory(paths["npz"])
    assert str(traj["sampler"]) == "GFN-FF (gfnff)"
    assert str(traj["reference"]) == "GFN2-xTB (tblite)"
    steps.label_chunk(
        config=config,
        system="water_benzene",
        trajectory=str(paths["npz"]),
        chunk=0,
        n_chunks=1,
        labels=str(tmp_path / "labels.npz"),
    )
    labels = load_labels(tmp_path / "labels.npz", system)
    reference = make_calculator(reference_settings(config), system.charge, system.multiplicity)
    sampler = make_calculator(
        CalculatorSettings.from_config(GFNFF), system.charge, system.multiplicity
    )
    for i in (0, len(traj["R"]) - 1):
        atoms = Atoms(system.z, positions=traj["R"][i])
        atoms.calc = reference
        E_ref = atoms.get_potential_energy() * KCAL_MOL_PER_EV
        F_ref = atoms.get_forces() * KCAL_MOL_PER_EV
        atoms.calc = sampler
        E_ff = atoms.get_potential_energy() * KCAL_MOL_PER_EV
        F_ff = atoms.get_forces() * KCAL_MOL_PER_EV
        # the SCF of a labelling run restarts from the previous frame: agreement to 1e-4
        assert labels["E"][i] == pytest.approx(E_ref, abs=1e-4)
        np.testing.assert_allclose(labels["F"][i], F_ref, atol=1e-3)
        assert abs(labels["E"][i] - E_ff) > 1.0
        assert np.abs(labels["F"][i] - F_ff).mean() > 0.1


def test_selected_frames_record_replica_time_and_cvs(sampled):
    config, paths = sampled
    traj = load_trajectory(paths["npz"])
    replicas = [load_trajectory(paths[f"replica_{r}"]) for r in range(2)]
    assert len(traj["R"]) == 8 and traj["cv"].shape == (8, 2)
    for i, cand in enumerate(traj["candidate_index"]):
        r, j = divmod(int(cand), 6)
        assert traj["replica"][i] == r
        assert traj["temperature_K"][i] == config["sampling"]["temperatures_K"][r]
        assert traj["time_fs"][i] == replicas[r]["time_fs"][j]
        np.testing.assert_array_equal(traj["R"][i], replicas[r]["R"][j])
    assert traj["cv"][:, 0] == pytest.approx(traj["com_distance"])
    table = np.genfromtxt(paths["csv"], delimiter=",", names=True)
    assert list(table.dtype.names) == [
        "frame", "replica", "temperature_K", "time_fs", "R_CM_A", "d_min_A"
    ]  # fmt: skip


def test_replicas_and_selection_are_deterministic_for_a_seed(sampled, tmp_path):
    config, paths = sampled
    again = run_sampling(config, tmp_path / "again")
    for key in ("replica_0", "replica_1", "npz", "csv"):
        assert again[key].read_bytes() == paths[key].read_bytes(), key
    other = run_sampling({**config, "seed": 6}, tmp_path / "other")
    assert other["replica_0"].read_bytes() != paths["replica_0"].read_bytes()


def ornstein_uhlenbeck(n: int, tau: float, seed: int) -> np.ndarray:
    """A 2-D correlated trajectory with stationary standard normal marginals."""
    rng = np.random.default_rng(seed)
    a = np.exp(-1.0 / tau)
    x = np.empty((n, 2))
    x[0] = rng.standard_normal(2)
    noise = rng.standard_normal((n, 2)) * np.sqrt(1 - a * a)
    for t in range(1, n):
        x[t] = a * x[t - 1] + noise[t]
    return x


def test_cv_selection_covers_the_cv_range_better_than_consecutive_frames():
    cvs = ornstein_uhlenbeck(20000, tau=50.0, seed=1)
    n = 100
    consecutive = np.arange(n)
    even = select_evenly_in_time(len(cvs), n)
    chosen = select_by_cv(cvs, n, seed=0)
    assert np.unique(chosen).size == n
    cov = {name: coverage(cvs[idx], cvs, bins=10) for name, idx in
           (("consecutive", consecutive), ("time", even), ("cv", chosen))}  # fmt: skip
    assert cov["cv"] > cov["time"] > cov["consecutive"]
    assert cov["cv"] > 0.9
    # the Gaussian tails (|x| > 2, 4.6 % of the frames) get several times their share
    tails = np.mean(np.abs(cvs[chosen]) > 2.0)
    assert tails > 3 * np.mean(np.abs(cvs) > 2.0)
    span = np.ptp(cvs[chosen], axis=0) / np.ptp(cvs, axis=0)
    assert np.all(span > 0.9)
    np.testing.assert_array_equal(chosen, select_by_cv(cvs, n, seed=0))
    assert not np.array_equal(chosen, select_by_cv(cvs, n, seed=1))


def test_time_selection_keeps_every_frame_when_sizes_match():
    np.testing.assert_array_equal(select_evenly_in_time(7, 7), np.arange(7))
    np.testing.assert_array_equal(select_evenly_in_time(10, 4), [0, 3, 6, 9])
    for m in range(1, 40):
        for n in range(1, m + 1):
            assert np.unique(select_evenly_in_time(m, n)).size == n
    with pytest.raises(ConfigError, match="cannot keep 5 frames out of 4"):
        select_frames(np.zeros((4, 2)), 5, "cv", 0)
    with pytest.raises(ConfigError, match="sampling.selection"):
        select_frames(np.zeros((4, 2)), 2, "random", 0)


def test_sampling_settings_resolve_replicas_and_sampler(tmp_path):
    config = replica_config(tmp_path, frames_per_replica=None, n_frames=9)
    s = sampling_settings(config, "water_benzene")
    assert s.frames_per_replica == 5 and s.calculator.as_config() == GFNFF
    del config["sampling"]["calculator"]
    assert sampling_settings(config, "water_benzene").calculator == reference_settings(config)
    config["sampling"] |= {"frames_per_replica": 4}
    with pytest.raises(ConfigError, match=r"n_frames = 9 asks 5 frames of each of 2 repl"):
        sampling_settings(config, "water_benzene")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "ase", "class": "no_such_package_xyz.calc:Calc"}, "cannot import"),
        ({"name": "ase", "class": "ase.calculators.emt:NoSuchClass"}, "cannot import"),
        ({"name": "ase", "class": "ase.calculators.emt:EMT", "kwargs": [1]}, "'kwargs' must"),
        ({"name": "ase", "class": "ase.units:fs"}, "is not an ASE calculator class"),
        ({"name": "psi4"}, "unknown calculator name 'psi4'"),
        ({"name": "gfnff", "method": "x"}, "unknown gfnff key"),
        ({"name": "tblite", "methd": "GFN2-xTB"}, "unknown tblite key"),
    ],
)
def test_bad_calculator_spec_is_refused_with_its_key(tmp_path, spec, message):
    config = replica_config(tmp_path, calculator=spec)
    with pytest.raises(ConfigError, match=message) as err:
        check_config(config)
    assert str(err.value).startswith("sampling.calculator: ")
    config["systems"]["water_benzene"]["sampling"] = {"calculator": spec}
    with pytest.raises(ConfigError, match=r"^systems.water_benzene.sampling.calculator: "):
        check_config(config)
    with pytest.raises(ConfigError, match=r"^reference: "):
        check_calculator_spec(spec, "reference")


def test_missing_sampler_package_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gfnff.ase_calculator", None)  # import fails
    with pytest.raises(ConfigError, match=r"^sampling.calculator: .*'gfnff' needs a package"):
        check_config(replica_config(tmp_path))


def snakemake_dry_run(cwd: Path, *args: str, pythonpath: Path | None = None):
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_bad_sampler_fails_before_any_job_starts(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "results: " + str(tmp_path / "res") + "\n"
        "sampling: {calculator: {name: ase, class: 'no_such_package_xyz:Calc'}}\n"
        "systems: {water_benzene: {preset: water_benzene}}\n"
    )
    run = snakemake_dry_run(REPO, "--configfile", str(cfg))
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert "sampling.calculator: cannot import 'no_such_package_xyz:Calc'" in out
    assert not (tmp_path / "res").exists()


def test_c60_config_plans_in_a_clone_with_nothing_beside_it(tmp_path):
    clone = tmp_path / "alone" / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    run = snakemake_dry_run(
        clone,
        "--configfile",
        "workflow/configs/c60_buckycatcher.yaml",
        pythonpath=clone / "src",
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "sample_replica" in run.stdout and "select_frames" in run.stdout
    assert sorted(p.name for p in (tmp_path / "alone").iterdir()) == ["repo"]
