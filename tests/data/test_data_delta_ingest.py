"""Δ decomposition, ingestion of user data and train/valid/test splits."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pathlib  # noqa: E402

import ase.io  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

from deltagdml.data.delta import build_delta_datasets, write_delta_datasets  # noqa: E402
from deltagdml.data.ingest import ingest_dataset  # noqa: E402
from deltagdml.data.labelling import combine_labels, geometry_labels, label_fragments  # noqa: E402
from deltagdml.data.splits import load_splits, make_splits, save_splits  # noqa: E402
from deltagdml.data.systems import DEFAULT_SYSTEMS, System, system_from_config  # noqa: E402
from deltagdml.errors import ConfigError, DatasetError  # noqa: E402
from deltagdml.gdml.dataset import Dataset, load_dataset, save_dataset  # noqa: E402
from deltagdml.settings import CalculatorSettings
from deltagdml.units import KCAL_MOL_PER_EV  # noqa: E402


@pytest.fixture
def trimer():
    """Two waters and a Na+ ion: three fragments, one of them a single atom."""
    water = np.array([[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])
    positions = np.vstack([water, water + [3.0, 0.5, 0.0], [[1.5, -2.5, 0.3]]])
    atoms = Atoms("OH2OH2Na", positions=positions)
    frags = [np.array([3, 4, 5]), np.array([0, 1, 2]), np.array([6])]
    return System("trimer", atoms, frags, [0, 0, 1], [1, 1, 1], 1, 1)


def synthetic_labels(system, m=6, seed=1):
    rng = np.random.default_rng(seed)
    labels = geometry_labels(system, system.atoms.positions + rng.normal(0, 0.1, (m, 7, 3)))
    labels.update(E=rng.normal(size=m), F=rng.normal(size=(m, 7, 3)))
    for k, idx in enumerate(system.fragments):
        single = len(idx) == 1
        labels[f"E_frag_{k}"] = np.full(m, 42.0) if single else rng.normal(size=m)
        labels[f"F_frag_{k}"] = np.zeros((m, 1, 3)) if single else rng.normal(size=(m, len(idx), 3))
    return labels


@pytest.fixture(scope="module")
def water_benzene():
    return system_from_config("water_benzene", DEFAULT_SYSTEMS["water_benzene"])


# --- delta -------------------------------------------------------------------------------


def test_delta_decomposition_three_fragments(trimer):
    labels = synthetic_labels(trimer)
    ds = build_delta_datasets(trimer, labels, theory="synthetic")
    assert set(ds) == {"full", "fragment_0", "fragment_1", "nonint", "binding"}
    full, nonint, binding = ds["full"], ds["nonint"], ds["binding"]
    np.testing.assert_allclose(binding.F + nonint.F, full.F, rtol=0, atol=1e-12)
    np.testing.assert_allclose(binding.E + nonint.E, full.E, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(full.F, labels["F"])
    # F0 holds each fragment's isolated forces at that fragment's atoms
    np.testing.assert_array_equal(nonint.F[:, [3, 4, 5]], labels["F_frag_0"])
    np.testing.assert_array_equal(nonint.F[:, [0, 1, 2]], labels["F_frag_1"])
    np.testing.assert_array_equal(nonint.F[:, 6], 0.0)
    np.testing.assert_allclose(
        nonint.E, labels["E_frag_0"] + labels["E_frag_1"] + 42.0, rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(ds["fragment_0"].R, labels["R"][:, [3, 4, 5]])
    np.testing.assert_array_equal(ds["fragment_0"].z, [8, 1, 1])
    np.testing.assert_array_equal(ds["fragment_0"].extra["atom_indices"], [3, 4, 5])
    for key in ("nonint", "binding"):
        np.testing.assert_array_equal(ds[key].extra["constant_fragments"], [2])
        np.testing.assert_array_equal(ds[key].extra["constant_energies"], [42.0])


def test_written_delta_datasets_reload_with_md5(trimer, tmp_path):
    ds = build_delta_datasets(trimer, synthetic_labels(trimer), theory="synthetic")
    paths = write_delta_datasets(ds, tmp_path / "delta")
    assert sorted(p.name for p in (tmp_path / "delta").iterdir()) == sorted(
        f"{key}.npz" for key in ds
    )
    for key, path in paths.items():
        with np.load(path, allow_pickle=False) as raw:
            assert str(raw["md5"]) == ds[key].md5()
            if key == "binding":
                np.testing.assert_array_equal(raw["constant_energies"], [42.0])
        loaded = load_dataset(path)
        assert loaded.md5() == ds[key].md5()
        np.testing.assert_array_equal(loaded.F, ds[key].F)


def test_delta_rejects_incomplete_or_inconsistent_labels(trimer, water_benzene):
    labels = synthetic_labels(trimer)
    no_frag = {k: v for k, v in labels.items() if "_frag_" not in k}
    with pytest.raises(DatasetError, match="fragment labels are both needed"):
        build_delta_datasets(trimer, no_frag, "x")
    moving_ion = dict(labels, F_frag_2=np.ones((6, 1, 3)))
    with pytest.raises(DatasetError, match="single-atom fragment 2"):
        build_delta_datasets(trimer, moving_ion, "x")
    with pytest.raises(DatasetError, match="atomic numbers differ"):
        build_delta_datasets(water_benzene, labels, "x")


# --- ingest ------------------------------------------------------------------------------


def write_extxyz(path, system, R, E_eV, F_eV, order=None):
    frames = []
    order = np.arange(system.n_atoms) if order is None else order
    for r, e, f in zip(R, E_eV, F_eV, strict=True):
        atoms = Atoms(system.atoms.numbers[order], positions=r[order])
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f[order])
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


def test_ingest_extxyz_converts_ev_to_kcal_mol(water_benzene, tmp_path):
    rng = np.random.default_rng(0)
    R = water_benzene.atoms.positions + rng.normal(0, 0.05, (4, 15, 3))
    E, F = rng.normal(-570.0, 0.1, 4), rng.normal(0, 1, (4, 15, 3))
    write_extxyz(tmp_path / "traj.xyz", water_benzene, R, E, F)
    labels = ingest_dataset(tmp_path / "traj.xyz", water_benzene)
    np.testing.assert_allclose(labels["E"], E * KCAL_MOL_PER_EV, rtol=1e-6)  # extxyz: ~8 digits
    np.testing.assert_allclose(labels["F"], F * KCAL_MOL_PER_EV, rtol=1e-6)  # extxyz: ~8 digits
    np.testing.assert_allclose(labels["R"], R, atol=1e-8)
    assert "E_frag_0" not in labels
    # fragment labels from one file per fragment ...
    files = []
    for k, idx in enumerate(water_benzene.fragments):
        sub = System("f", water_benzene.atoms[idx], [np.arange(len(idx))] * 2, [0], [1], 0, 1)
        files.append(tmp_path / f"frag{k}.xyz")
        write_extxyz(files[k], sub, R[:, idx], E / (k + 2), F[:, idx])
    with_frags = ingest_dataset(tmp_path / "traj.xyz", water_benzene, fragment_files=files)
    np.testing.assert_allclose(
        with_frags["E_frag_1"], E / 3 * KCAL_MOL_PER_EV, rtol=1e-6
    )  # extxyz: ~8 digits
    np.testing.assert_allclose(
        with_frags["F_frag_0"], F[:, :12] * KCAL_MOL_PER_EV, rtol=1e-6
    )  # extxyz: ~8 digits
    # ... whose geometries must be the complex's
    write_extxyz(tmp_path / "moved.xyz", sub, R[:, 12:] + 0.01, E, F[:, 12:])
    with pytest.raises(DatasetError, match="moved.xyz: geometry 0 differs from fragment 1"):
        ingest_dataset(tmp_path / "traj.xyz", water_benzene, [files[0], tmp_path / "moved.xyz"])
    with pytest.raises(DatasetError, match="frag1.xyz: 3 atoms, but fragment 0"):
        ingest_dataset(tmp_path / "traj.xyz", water_benzene, files[::-1])


def test_ingest_computes_fragment_labels_with_calculator(water_benzene, tmp_path):
    R = water_benzene.atoms.positions[None] + np.zeros((2, 1, 1))
    R[1, 12] += 0.05
    ds = Dataset(R, water_benzene.z, np.zeros_like(R), np.array([1.0, 2.0]), name="mine")
    save_dataset(ds, tmp_path / "mine.npz")
    labels = ingest_dataset(tmp_path / "mine.npz", water_benzene, calculator=CalculatorSettings())
    direct = label_fragments(water_benzene, R, None, progress=lambda m: None)
    for key in ("E_frag_0", "F_frag_1"):
        np.testing.assert_allclose(labels[key], direct[key], atol=1e-6)
    np.testing.assert_array_equal(labels["E"], [1.0, 2.0])
    # complex-only ingestion + separately computed fragments gives the same labels
    combined = combine_labels(ingest_dataset(tmp_path / "mine.npz", water_benzene), direct)
    assert set(combined) == set(labels)
    with pytest.raises(DatasetError, match="'E_frag_0' is given by more than one"):
        combine_labels(labels, direct)


def test_ingest_rejects_wrong_element_order(water_benzene, tmp_path):
    R = water_benzene.atoms.positions[None]
    order = np.r_[12:15, 0:12]  # water first
    write_extxyz(tmp_path / "swapped.xyz", water_benzene, R, [0.0], np.zeros((1, 15, 3)), order)
    with pytest.raises(DatasetError, match="element order differs.*atom 0 has Z=8, expected Z=6"):
        ingest_dataset(tmp_path / "swapped.xyz", water_benzene)


def test_ingest_rejects_frames_without_forces(water_benzene, tmp_path):
    ase.io.write(tmp_path / "bare.xyz", water_benzene.atoms)
    with pytest.raises(DatasetError, match="frame 0 lacks energy or forces"):
        ingest_dataset(tmp_path / "bare.xyz", water_benzene)


class _Bomb:
    """Unpickling this object creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_ingest_refuses_object_arrays_without_unpickling(water_benzene, tmp_path):
    marker = tmp_path / "unpickled"
    bomb = np.array([_Bomb(str(marker))], dtype=object)
    R = water_benzene.atoms.positions[None]
    path = tmp_path / "evil.npz"
    np.savez(path, R=R, z=water_benzene.z, F=np.zeros_like(R), E=bomb)
    with pytest.raises(DatasetError, match="pickled object array"):
        ingest_dataset(path, water_benzene)
    assert not marker.exists()


# --- splits ------------------------------------------------------------------------------


def test_splits_disjoint_deterministic_and_seeded(tmp_path):
    E = np.random.default_rng(0).normal(size=200)
    a = make_splits(E, 50, 30, 40, seed=7)
    assert [len(a[p]) for p in ("train", "valid", "test")] == [50, 30, 40]
    all_idx = np.concatenate([a["train"], a["valid"], a["test"]])
    assert np.unique(all_idx).size == 120 and all_idx.min() >= 0 and all_idx.max() < 200
    b = make_splits(E, 50, 30, 40, seed=7)
    for part in a:
        np.testing.assert_array_equal(a[part], b[part])
    c = make_splits(E, 50, 30, 40, seed=8)
    assert not np.array_equal(a["train"], c["train"])
    save_splits(a, tmp_path / "splits.npz", n_geometries=200)
    with np.load(tmp_path / "splits.npz") as raw:
        assert {"idxs_train", "idxs_valid", "idxs_test"} <= set(raw.files)
    loaded = load_splits(tmp_path / "splits.npz", n_geometries=200)
    for part in a:
        np.testing.assert_array_equal(loaded[part], a[part])
    with pytest.raises(DatasetError, match="drawn for 200 geometries, dataset has 150"):
        load_splits(tmp_path / "splits.npz", n_geometries=150)


def test_splits_errors(tmp_path):
    E = np.arange(20.0)
    with pytest.raises(DatasetError, match="exceeds the 20 geometries"):
        make_splits(E, 10, 5, 6, seed=0)
    with pytest.raises(ConfigError, match="n_valid must be a non-negative integer"):
        make_splits(E, 10, -1, 5, seed=0)
    overlapping = {"train": np.array([0, 1]), "valid": np.array([1]), "test": np.array([2])}
    with pytest.raises(DatasetError, match="'valid' overlaps other splits at \\[1\\]"):
        save_splits(overlapping, tmp_path / "bad.npz")
    np.savez(tmp_path / "float.npz", idxs_train=[0.0], idxs_valid=[1], idxs_test=[2])
    with pytest.raises(DatasetError, match="integer array"):
        load_splits(tmp_path / "float.npz")
    np.savez(tmp_path / "range.npz", idxs_train=[0], idxs_valid=[1], idxs_test=[25])
    with pytest.raises(DatasetError, match="'test' indices out of range for 20"):
        load_splits(tmp_path / "range.npz", n_geometries=20)
