"""Bad input matrix: each case is rejected with one clear message naming the file or key
and the problem, before expensive work, leaving no output behind."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.collections import s22

from deltagdml.cli import main as cli
from deltagdml.data.ingest import ingest_dataset
from deltagdml.data.systems import DEFAULT_SYSTEMS, system_from_config
from deltagdml.errors import DatasetError, DeltaGDMLError
from deltagdml.gdml.dataset import Dataset, load_dataset, save_dataset
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import save_model

ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "workflow" / "configs" / "tiny.yaml").read_text())


def _config(**changes):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return config


WATER = {"structure": "Benzene-water_complex"}
CONFIG_CASES = {
    "unknown key": (_config(colour="blue"), "'colour' was unexpected"),
    "wrong type": (_config(**{"training.n_train": "ten"}), "'ten' is not of type 'integer'"),
    "negative size": (_config(**{"training.n_test": -5}), "-5 is less than the minimum of 1"),
    "splits larger than data": (
        _config(**{"training.n_train": 50}),
        "n_train + n_valid + n_test = 80 exceeds the 60 sampled frames",
    ),
    "unknown preset": (
        _config(**{"systems.extra": {"preset": "benzene_trimer"}}),
        "unknown preset 'benzene_trimer'",
    ),
    "missing structure file": (
        _config(**{"systems.extra": {"structure": "missing.xyz", "fragments": [[0], [1]]}}),
        "'missing.xyz' is neither an S22 name nor an existing file",
    ),
    "overlapping fragments": (
        _config(**{"systems.extra": {**WATER, "fragments": [list(range(13)), [12, 13, 14]]}}),
        "fragments overlap: atoms [12]",
    ),
    "fragment misses an atom": (
        _config(**{"systems.extra": {**WATER, "fragments": [list(range(12)), [12, 13]]}}),
        "atoms [14] belong to no fragment",
    ),
    "charges inconsistent": (
        _config(
            **{
                "systems.extra": {
                    **WATER,
                    "fragments": [list(range(12)), [12, 13, 14]],
                    "charges": [0, 1],
                    "charge": 0,
                }
            }
        ),
        "complex charge 0 differs from the sum of fragment charges",
    ),
    "user dataset missing": (
        _config(
            **{
                "systems.extra": {
                    **WATER,
                    "fragments": [list(range(12)), [12, 13, 14]],
                    "dataset": "mine.extxyz",
                }
            }
        ),
        "mine.extxyz",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_rejected_before_any_job(case, tmp_path):
    config, message = CONFIG_CASES[case]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--cores",
            "1",
            "--configfile",
            "config.yaml",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert message in output, output[-3000:]
    assert "Traceback" not in output or "WorkflowError" in output
    assert not (tmp_path / config["results"]).exists()


@pytest.fixture
def good(tmp_path):
    rng = np.random.default_rng(0)
    atoms = s22["Benzene-water_complex"]
    R = atoms.positions[None] + rng.normal(scale=0.05, size=(6, len(atoms), 3))
    ds = Dataset(R=R, z=atoms.numbers, F=rng.normal(size=R.shape), E=rng.normal(size=6))
    path = tmp_path / "good.npz"
    save_dataset(ds, path)
    with np.load(path) as f:
        return dict(f)


def _write(tmp_path, arrays, name="bad.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _edit(arrays, **changes):
    out = dict(arrays)
    for key, value in changes.items():
        if value is None:
            out.pop(key)
        else:
            out[key] = value
    return out


def _nan(a, index=(1, 2, 0)):
    a = a.astype(float).copy()
    a[index[: a.ndim]] = np.nan
    return a


DATASET_CASES = {
    "missing key": (lambda g: _edit(g, F=None), "missing key(s) ['F']"),
    "shape mismatch": (lambda g: _edit(g, F=g["F"][:, :14]), "'F' has shape (6, 14, 3)"),
    "NaN in R": (lambda g: _edit(g, R=_nan(g["R"])), "'R' contains NaN or inf"),
    "inf in F": (
        lambda g: _edit(g, F=np.where(g["F"] > 1, np.inf, g["F"])),
        "'F' contains NaN or inf",
    ),
    "NaN in E": (lambda g: _edit(g, E=_nan(g["E"])), "'E' contains NaN or inf"),
    "unknown energy unit": (
        lambda g: _edit(g, e_unit=np.array("kcal")),
        "unknown energy unit e_unit='kcal'",
    ),
    "z length": (lambda g: _edit(g, z=g["z"][:14]), "'z' has 14 atoms but 'R' has 15"),
    "pickled object array": (
        lambda g: _edit(g, E=np.array([{"boom": 1}] * 6, dtype=object)),
        "pickled object array; refusing to unpickle it",
    ),
}


@pytest.mark.parametrize("case", list(DATASET_CASES))
def test_bad_dataset_named_and_rejected(case, good, tmp_path):
    make, message = DATASET_CASES[case]
    path = _write(tmp_path, make(good))
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert str(path) in str(err.value) and message in str(err.value)
    # the command line reports it in one line and writes no model
    assert (
        cli(["train", str(path), "-o", str(tmp_path / "m.npz"), "--n-train", "3", "--n-valid", "2"])
        == 1
    )
    assert not (tmp_path / "m.npz").exists()


def test_dataset_for_other_atoms_than_the_system(good, tmp_path):
    path = _write(tmp_path, _edit(good, z=good["z"][::-1].copy()))
    system = system_from_config("water_benzene", DEFAULT_SYSTEMS["water_benzene"])
    with pytest.raises(DatasetError, match="element order differs from system 'water_benzene'"):
        ingest_dataset(path, system)


def test_duplicate_training_geometries(good):
    R = good["R"].copy()
    R[4] = R[1]
    with pytest.raises(DatasetError, match="geometries 1 and 4 are identical"):
        GDMLModel(sigma=10.0).fit(R, good["z"], good["F"], good["E"])


def test_model_for_other_atoms_than_the_data(good, tmp_path):
    ds_path = _write(tmp_path, good, "data.npz")
    model = GDMLModel(sigma=10.0, perms="none").fit(
        good["R"][:, :12], good["z"][:12], good["F"][:, :12], good["E"]
    )
    save_model(model, tmp_path / "benzene.npz")
    assert cli(["test", str(tmp_path / "benzene.npz"), str(ds_path)]) == 1
    with pytest.raises(DeltaGDMLError, match="trained for atoms .* but .*data.npz has"):
        model.check_atoms(good["z"], str(ds_path))


def _upper(K):
    """The solver's input layout: K in the C-ordered upper triangle."""
    return np.triu(K) + np.tril(np.full_like(K, np.nan), -1)


def test_non_positive_definite_kernel_falls_back_with_a_warning(caplog):
    from deltagdml.gdml.solvers.cholesky import solve_cholesky

    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    K = Q @ np.diag([3.0, 2.0, 1.0, 0.5, -0.2, 1.5]) @ Q.T  # indefinite
    y = rng.normal(size=6)
    alpha = solve_cholesky(_upper(K), y, 0.0, reassemble=lambda: K.copy())
    np.testing.assert_allclose(K @ alpha, y, atol=1e-10)
    assert "not numerically positive definite" in caplog.text


def test_singular_kernel_is_a_clear_error():
    from deltagdml.errors import ModelError
    from deltagdml.gdml.solvers.cholesky import solve_cholesky

    K = np.ones((4, 4))
    with pytest.raises(ModelError, match="kernel matrix is singular"):
        solve_cholesky(_upper(K), np.arange(4.0), 0.0, reassemble=lambda: K.copy())
