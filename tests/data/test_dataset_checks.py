"""Physical checks on every dataset that is read (issue 27, class 3): mixed units, energies
that do not match the forces, complex or rounded coordinates, periodic cells, and the same
geometry checks for `predict` on an .xyz as on an .npz."""

import logging
import re

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from conftest import morse_energy_forces

from deltagdml.cli import main as cli
from deltagdml.data.ingest import read_labelled_geometries
from deltagdml.errors import DatasetError
from deltagdml.gdml.dataset import Dataset, load_dataset, save_dataset
from deltagdml.units import KCAL_MOL_PER_EV, LENGTH_UNITS_IN_ANG

BOHR = LENGTH_UNITS_IN_ANG["bohr"]
ACCEL = 4.184e-4  # Å/fs² per (kcal/mol/Å)/amu
KB = 0.0019872  # kcal/mol/K


def morse_md(
    name: str = "CH3CH2OH", replicas: int = 3, steps: int = 800, T: float = 500.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frames of velocity-Verlet MD replicas on a Morse surface, every 4th step, shuffled."""
    atoms = molecule(name)
    R_ref, mass = atoms.positions, atoms.get_masses()[:, None]
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(replicas):
        r = R_ref + rng.normal(0.0, 0.03, R_ref.shape)
        v = rng.normal(size=r.shape) * np.sqrt(KB * T * ACCEL / mass)
        f = morse_energy_forces(r[None], R_ref)[1][0]
        for step in range(steps):
            v += 0.5 * 0.25 * ACCEL * f / mass
            r = r + 0.25 * v
            f = morse_energy_forces(r[None], R_ref)[1][0]
            v += 0.5 * 0.25 * ACCEL * f / mass
            if step % 4 == 3:
                frames.append(r.copy())
    R = np.array(frames)[rng.permutation(len(frames))]
    E, F = morse_energy_forces(R, R_ref)
    return atoms.numbers, R, E, F


@pytest.fixture(scope="module")
def md() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return morse_md()


def save(path, z, R, E, F, **extra) -> str:
    np.savez(path, R=R, z=z, E=E, F=F, r_unit="Ang", e_unit="kcal/mol", **extra)
    return str(path)


def write_xyz(path, z, R, E_eV=None, F_eV=None, pbc=False) -> str:
    frames = []
    for i, r in enumerate(R):
        atoms = Atoms(z, positions=r, cell=[20.0] * 3 if pbc else None, pbc=pbc)
        if E_eV is not None:
            atoms.calc = SinglePointCalculator(atoms, energy=E_eV[i], forces=F_eV[i])
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return str(path)


def test_clean_shuffled_md_is_read_without_a_word(md, tmp_path, caplog):
    z, R, E, F = md
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(save(tmp_path / "md.npz", z, R, E, F))
        R2, _, E2, _ = read_labelled_geometries(
            write_xyz(tmp_path / "md.xyz", z, R, E / KCAL_MOL_PER_EV, F / KCAL_MOL_PER_EV)
        )
    assert ds.n_geometries == len(R) == len(R2)
    np.testing.assert_allclose(E2, E, rtol=1e-6)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_half_the_frames_in_bohr_refused(md, tmp_path):
    z, R, E, F = md
    R = R.copy()
    R[1::2] /= BOHR  # every other frame's positions written in bohr, file says Å
    with pytest.raises(DatasetError, match=r"mixed.npz.*frames \[1, 3, 5, .*\(300 of 600\)"):
        load_dataset(save(tmp_path / "mixed.npz", z, R, E, F))


def test_a_dataset_entirely_in_bohr_refused_in_npz_and_xyz(md, tmp_path):
    """Every frame in bohr, the file saying Å: each hydrogen ~1.9× its bond length from
    any atom. The same data in Å pass (the clean test above)."""
    z, R, E, F = md
    R_bohr = R / BOHR
    with pytest.raises(DatasetError, match=r"bohr.npz.*hydrogens.* 1\.9\d × .*in bohr\?"):
        load_dataset(save(tmp_path / "bohr.npz", z, R_bohr, E, F))
    with pytest.raises(DatasetError, match=r"bohr.xyz.*hydrogens.*in bohr\?"):
        read_labelled_geometries(
            write_xyz(tmp_path / "bohr.xyz", z, R_bohr, E / KCAL_MOL_PER_EV, F / KCAL_MOL_PER_EV)
        )


def test_bohr_without_hydrogens_warned_about_and_a_rare_gas_cluster_not(tmp_path, caplog):
    """C60 in bohr: a warning (no hydrogen to be sure by), none in Å; an Ar₃ cluster at
    its 3.8 Å contact, far beyond argon's covalent radius, gets none either."""
    rng = np.random.default_rng(0)
    c60 = molecule("C60").positions + rng.normal(0.0, 0.02, (12, 60, 3))
    ar3 = 3.8 * np.array([[0, 0, 0], [1, 0, 0], [0.5, 0.75**0.5, 0]]) + rng.normal(
        0.0, 0.05, (12, 3, 3)
    )
    cases = {"c60_bohr": (6, c60 / BOHR), "c60": (6, c60), "ar3": (18, ar3)}
    for name, (element, R) in cases.items():
        z, zeros = np.full(R.shape[1], element), np.zeros(len(R))
        with caplog.at_level(logging.WARNING):
            load_dataset(save(tmp_path / f"{name}.npz", z, R, zeros, np.zeros_like(R)))
        assert ("in bohr?" in caplog.text) == (name == "c60_bohr"), name
        assert name == "c60_bohr" or not caplog.text, caplog.text
        caplog.clear()


def test_ev_extxyz_with_a_block_of_kcal_mol_energies_refused(md, tmp_path):
    z, R, E, F = md
    E_eV, F_eV = E / KCAL_MOL_PER_EV - 4000.0, F / KCAL_MOL_PER_EV
    E_eV[100:140] *= KCAL_MOL_PER_EV  # a block of energies left in kcal/mol
    path = write_xyz(tmp_path / "block.xyz", z, R, E_eV, F_eV)
    with pytest.raises(DatasetError, match=r"block.xyz: the energies of frames \[100, 101"):
        read_labelled_geometries(path)


@pytest.mark.parametrize(
    "corrupt, factor",
    [
        (lambda E, F: (np.random.default_rng(0).permutation(E), F), 0.0),
        (lambda E, F: (E / KCAL_MOL_PER_EV, F), 1 / KCAL_MOL_PER_EV),  # E in eV, F kcal/mol
        (lambda E, F: (E, -F), -1.0),  # gradients stored as forces
    ],
    ids=["shuffled", "energies_in_eV", "gradients_as_forces"],
)
def test_energies_inconsistent_with_forces_refused(md, tmp_path, corrupt, factor):
    z, R, E, F = md
    E, F = corrupt(E, F)
    with pytest.raises(DatasetError, match="energies do not match the forces") as exc:
        load_dataset(save(tmp_path / "bad.npz", z, R, E, F))
    slope = float(re.search(r"ΔE ≈ (\S+) × ΔE_forces", str(exc.value)).group(1))
    assert slope == pytest.approx(factor, abs=0.2 * abs(factor) if factor else 0.5)


def test_a_few_mislabelled_frames_warned_about(md, tmp_path, caplog):
    z, R, E, F = md
    E = E.copy()
    E[[7, 42]] += 100.0
    with caplog.at_level(logging.WARNING):
        load_dataset(save(tmp_path / "few.npz", z, R, E, F))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "frames [7, 42] (2 of" in warned[0]


def test_complex_coordinates_refused(md, tmp_path):
    z, R, E, F = md
    with pytest.raises(DatasetError, match="complex.npz: key 'R' must be real"):
        load_dataset(save(tmp_path / "complex.npz", z, R + 1e-3j, E, F))
    with pytest.raises(DatasetError, match="'R' is complex-valued"):
        Dataset(R=R + 1e-3j, z=z, F=F, E=E)


@pytest.mark.parametrize("decimals", [0, 1])
def test_rounded_coordinates_refused(md, tmp_path, decimals):
    z, R, E, F = md
    path = save(tmp_path / "rounded.npz", z, np.round(R * 3.0, decimals), E, F)
    with pytest.raises(DatasetError, match=r"rounded.npz.*lie on a grid of"):
        load_dataset(path)


def test_periodic_cell_refused_unless_ignored(md, tmp_path, caplog):
    z, R, E, F = md
    R, E, F = R[:20], E[:20], F[:20]
    xyz = write_xyz(tmp_path / "box.xyz", z, R, E / KCAL_MOL_PER_EV, F / KCAL_MOL_PER_EV, True)
    npz = save(tmp_path / "box.npz", z, R, E, F, lattice=np.eye(3) * 20.0)
    for path, read in ((xyz, read_labelled_geometries), (npz, load_dataset)):
        with pytest.raises(DatasetError, match="periodic cell.*ignore_pbc"):
            read(path)
        with caplog.at_level(logging.WARNING):
            read(path, ignore_pbc=True)
        assert "periodic cell ignored" in caplog.text
        caplog.clear()


def test_predict_on_xyz_refuses_atoms_too_close(md, tmp_path, capsys):
    z, R, E, F = md
    data = tmp_path / "train.npz"
    save_dataset(Dataset(R=R[:30], z=z, F=F[:30], E=E[:30]), data)
    model = tmp_path / "model.npz"
    tiny = ["--n-train", "10", "--n-valid", "5", "--sigmas", "2", "--perms", "none"]
    assert cli(["train", str(data), "-o", str(model), *tiny]) == 0
    bad = R[:2].copy()
    bad[1, 1] = bad[1, 0] + [0.1, 0.0, 0.0]
    xyz = write_xyz(tmp_path / "close.xyz", z, bad)
    capsys.readouterr()
    assert cli(["predict", str(model), xyz, "-o", str(tmp_path / "out.npz")]) == 1
    err = capsys.readouterr().err
    assert "close.xyz: geometry 1 has two atoms 0.100 Å apart" in err
    assert not (tmp_path / "out.npz").exists()
    box = write_xyz(tmp_path / "box.xyz", z, R[:2], pbc=True)
    assert cli(["predict", str(model), box, "-o", str(tmp_path / "out.npz")]) == 1
    assert "--ignore-pbc" in capsys.readouterr().err
    assert cli(["predict", str(model), box, "-o", str(tmp_path / "out.npz"), "--ignore-pbc"]) == 0
