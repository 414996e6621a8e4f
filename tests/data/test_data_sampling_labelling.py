"""Calculators, restrained Langevin MD and labelling with real GFN2-xTB (tblite)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import molecule  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402

from deltagdml.data.calculators import check_calculator_spec, make_calculator, set_single_thread
from deltagdml.data.labelling import (
    LabellingError,
    chunk_indices,
    label_frames,
    load_labels,
    merge_labels,
    save_labels,
)
from deltagdml.data.md import COMRestraint, com_distances
from deltagdml.data.sampling import load_trajectory, sample_md, save_trajectory
from deltagdml.data.systems import DEFAULT_SYSTEMS, fragment_atoms, system_from_config  # noqa: E402
from deltagdml.errors import ConfigError, DatasetError  # noqa: E402
from deltagdml.settings import CalculatorSettings, RestraintSettings  # noqa: E402

spec = CalculatorSettings.from_config
from deltagdml.units import KCAL_MOL_PER_EV  # noqa: E402


def quiet(msg):
    pass


@pytest.fixture(scope="module")
def methane():
    return system_from_config("methane_dimer", DEFAULT_SYSTEMS["methane_dimer"])


@pytest.fixture(scope="module")
def water_benzene():
    return system_from_config("water_benzene", DEFAULT_SYSTEMS["water_benzene"])


@pytest.fixture(scope="module")
def na_benzene():
    return system_from_config("na_benzene", DEFAULT_SYSTEMS["na_benzene"])


def jiggle(system, n, scale=0.03, seed=0):
    rng = np.random.default_rng(seed)
    return system.atoms.positions + rng.normal(0.0, scale, (n, system.n_atoms, 3))


# --- calculators -------------------------------------------------------------------------


def test_tblite_calculator_gets_charge_and_multiplicity():
    calc = make_calculator(spec({"name": "tblite", "accuracy": 1.0}), charge=1, multiplicity=2)
    assert calc.parameters.charge == 1 and calc.parameters.multiplicity == 2
    assert calc.parameters.accuracy == 1.0 and calc.parameters.method == "GFN2-xTB"
    # multiplicity reaches tblite: triplet water lies ~15 eV above the singlet
    water = molecule("H2O")
    singlet = make_calculator(None, 0, 1).get_potential_energy(water)
    triplet = make_calculator(None, 0, 3).get_potential_energy(water)
    assert triplet - singlet > 5.0


def test_calculator_spec_errors():
    with pytest.raises(ConfigError, match="unknown calculator name 'orca'"):
        make_calculator(spec({"name": "orca"}), 0, 1)
    with pytest.raises(ConfigError, match=r"unknown tblite key\(s\) \['acuracy'\]"):
        make_calculator(spec({"name": "tblite", "acuracy": 0.1}), 0, 1)
    with pytest.raises(ConfigError, match="cannot import 'ase.calculators.emt:Nope'"):
        make_calculator(spec({"name": "ase", "class": "ase.calculators.emt:Nope"}), 0, 1)
    with pytest.raises(ConfigError, match="'collections:Counter' is not an ASE calculator class"):
        make_calculator(spec({"name": "ase", "class": "collections:Counter"}), 0, 1)
    with pytest.raises(ConfigError, match="'kwargs' must be a mapping"):
        make_calculator(
            spec({"name": "ase", "class": "ase.calculators.emt:EMT", "kwargs": 1}), 0, 1
        )
    single = {"name": "ase", "class": "ase.calculators.singlepoint:SinglePointCalculator"}
    with pytest.raises(ConfigError, match="kwargs \\[\\] do not fit .*missing a required argument"):
        make_calculator(spec(single), 0, 1)
    with pytest.raises(ConfigError, match="accuracy must be a positive number, got 'high'"):
        check_calculator_spec({"name": "tblite", "accuracy": "high"}, "reference")
    with pytest.raises(ConfigError, match="reference: method 'GFN3-xTB' is not one of"):
        check_calculator_spec({"name": "tblite", "method": "GFN3-xTB"}, "reference")
    lj = {"name": "ase", "class": "ase.calculators.lj:LennardJones"}
    check_calculator_spec({**lj, "kwargs": {"sigma": 1.0}}, "reference")
    with pytest.raises(ConfigError, match="pass_charge' must be true or false"):
        check_calculator_spec({**lj, "pass_charge": "yes"}, "reference")


def test_generic_ase_calculator_gets_charge_only_on_request():
    calc = make_calculator(spec({"name": "ase", "class": "ase.calculators.emt:EMT"}), 1, 1)
    assert isinstance(calc, EMT)
    tblite = {"name": "ase", "class": "tblite.ase:TBLite", "kwargs": {"verbosity": 0}}
    assert make_calculator(spec(tblite), 1, 2).parameters.charge is None
    calc = make_calculator(spec({**tblite, "pass_charge": True}), 1, 2)
    assert calc.parameters.charge == 1 and calc.parameters.multiplicity == 2


def test_set_single_thread_only_fills_unset(monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    set_single_thread()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "3"


# --- restraint and MD --------------------------------------------------------------------


@pytest.mark.parametrize("fragments", [[range(5), range(5, 10)], [range(5), [5, 6, 7], [8, 9]]])
def test_com_restraint_energy_forces(methane, fragments):
    fragments = [np.array(f) for f in fragments]
    atoms = methane.atoms.copy()
    r = com_distances(atoms.positions, atoms.get_masses(), fragments)[0]
    inside = COMRestraint(fragments, r0=r.max() + 0.1, k=2.0)
    assert inside.get_potential_energy(atoms) == 0.0
    assert np.all(inside.get_forces(atoms) == 0.0)
    r0 = r.min() - 0.5
    calc = COMRestraint(fragments, r0=r0, k=2.0)
    assert calc.get_potential_energy(atoms) == pytest.approx(np.sum((r - r0) ** 2))
    forces = calc.get_forces(atoms)
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-12)
    h = 1e-5
    for i, j in [(0, 0), (3, 2), (6, 1), (9, 0)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, j] += h
        minus.positions[i, j] -= h
        fd = -(calc.get_potential_energy(plus) - calc.get_potential_energy(minus)) / (2 * h)
        assert forces[i, j] == pytest.approx(fd, abs=1e-7)


def test_md_shapes_determinism_and_roundtrip(methane, tmp_path):
    messages = []
    traj = sample_md(
        methane, None, 300.0, 0.5, n_frames=4, stride=5, seed=3, progress=messages.append
    )
    assert traj["R"].shape == (4, 10, 3)
    np.testing.assert_array_equal(traj["z"], methane.z)
    np.testing.assert_allclose(traj["time_fs"], [2.5, 5.0, 7.5, 10.0])
    assert traj["com_distance"].shape == (4,)
    assert messages and messages[-1].endswith("4/4")
    assert not np.allclose(traj["R"][0], traj["R"][1])
    again = sample_md(methane, None, 300.0, 0.5, n_frames=4, stride=5, seed=3, progress=quiet)
    np.testing.assert_array_equal(traj["R"], again["R"])
    other = sample_md(methane, None, 300.0, 0.5, n_frames=4, stride=5, seed=4, progress=quiet)
    assert not np.allclose(traj["R"], other["R"])
    save_trajectory(traj, tmp_path / "traj.npz")
    loaded = load_trajectory(tmp_path / "traj.npz")
    for key in ("R", "z", "com_distance", "time_fs"):
        np.testing.assert_array_equal(loaded[key], traj[key])


def test_restraint_pulls_fragments_together(methane):
    start = com_distances(methane.atoms.positions, methane.atoms.get_masses(), methane.fragments)
    kwargs = dict(n_frames=8, stride=5, seed=1, progress=quiet)
    free = sample_md(
        methane, None, 300.0, 0.5, restraint=RestraintSettings(enabled=False), **kwargs
    )
    tight = sample_md(
        methane, None, 300.0, 0.5, restraint=RestraintSettings(r0=3.0, k=10.0), **kwargs
    )
    # without restraint the dimer stays near its start within 20 fs; with r0 = 3 Å it is pulled in
    assert np.all(np.abs(free["com_distance"] - start[0, 0]) < 0.2)
    assert tight["com_distance"][-1] < start[0, 0] - 0.5
    assert np.all(np.diff(tight["com_distance"]) < 0)


def test_load_trajectory_rejects_incomplete_file(tmp_path):
    np.savez(tmp_path / "t.npz", R=np.zeros((2, 3, 3)), z=[1, 1, 8], r_unit="Ang")
    with pytest.raises(DatasetError, match=r"missing key\(s\) \['com_distance', 'time_fs'\]"):
        load_trajectory(tmp_path / "t.npz")


def test_md_rejects_bad_settings(methane):
    with pytest.raises(ConfigError, match="'stride' must be a positive integer"):
        sample_md(methane, None, 300.0, 0.5, n_frames=2, stride=0, seed=0)
    with pytest.raises(ConfigError, match="restraint: need k > 0"):
        bad = RestraintSettings(k=-1.0)
        sample_md(methane, None, 300.0, 0.5, n_frames=2, stride=1, seed=0, restraint=bad)


# --- labelling ---------------------------------------------------------------------------


def test_labels_match_direct_ase_calculation_in_kcal_mol(water_benzene):
    R = jiggle(water_benzene, 3)
    labels = label_frames(water_benzene, R, None, progress=quiet)
    assert labels["E"].shape == (3,) and labels["F"].shape == (3, 15, 3)
    assert labels["F_frag_0"].shape == (3, 12, 3) and labels["F_frag_1"].shape == (3, 3, 3)
    for k, idx in enumerate(water_benzene.fragments):
        np.testing.assert_array_equal(labels[f"frag_idx_{k}"], idx)
    atoms = water_benzene.atoms.copy()
    atoms.positions = R[2]
    calc = make_calculator(None, 0, 1)
    assert labels["E"][2] == pytest.approx(
        calc.get_potential_energy(atoms) * KCAL_MOL_PER_EV, abs=1e-4
    )
    np.testing.assert_allclose(labels["F"][2], calc.get_forces(atoms) * KCAL_MOL_PER_EV, atol=1e-3)
    water = fragment_atoms(water_benzene, 1)
    water.positions = R[2, 12:]
    calc = make_calculator(None, 0, 1)
    e_water = calc.get_potential_energy(water) * KCAL_MOL_PER_EV
    assert labels["E_frag_1"][2] == pytest.approx(e_water, abs=1e-4)
    binding = labels["E"] - labels["E_frag_0"] - labels["E_frag_1"]
    assert np.all((binding < 0) & (binding > -10))  # water–benzene: a few kcal/mol


def test_forces_are_minus_energy_gradient(water_benzene):
    h = 1e-3
    R = np.repeat(jiggle(water_benzene, 1), 3, axis=0)
    R[1, 13, 0] += h
    R[2, 13, 0] -= h
    labels = label_frames(water_benzene, R, None, progress=quiet)
    fd = -(labels["E"][1] - labels["E"][2]) / (2 * h)
    assert labels["F"][0, 13, 0] == pytest.approx(fd, abs=1e-3)
    fd_frag = -(labels["E_frag_1"][1] - labels["E_frag_1"][2]) / (2 * h)
    assert labels["F_frag_1"][0, 1, 0] == pytest.approx(fd_frag, abs=1e-3)


def test_single_atom_ion_has_constant_energy_and_zero_force(na_benzene):
    labels = label_frames(na_benzene, jiggle(na_benzene, 3), None, progress=quiet)
    assert labels["F_frag_1"].shape == (3, 1, 3)
    assert np.all(labels["F_frag_1"] == 0.0)
    na = Atoms("Na")
    e_na = make_calculator(None, 1, 1).get_potential_energy(na) * KCAL_MOL_PER_EV
    np.testing.assert_allclose(labels["E_frag_1"], e_na, rtol=1e-10)
    assert abs(e_na) > 1.0  # a real energy, not a zero placeholder
    binding = labels["E"] - labels["E_frag_0"] - labels["E_frag_1"]
    assert np.all((binding < -15) & (binding > -40))  # Na+–benzene: ~ -25 kcal/mol


def test_chunked_labelling_merges_to_unchunked(methane, tmp_path):
    R = jiggle(methane, 5)
    whole = label_frames(methane, R, None, progress=quiet)
    chunks = chunk_indices(5, 2)
    assert [c.tolist() for c in chunks] == [[0, 1, 2], [3, 4]]
    paths = []
    for i, idx in enumerate(chunks):
        part = label_frames(methane, R[idx], None, progress=quiet, frame_indices=idx)
        save_labels(part, tmp_path / f"chunk{i}.npz")
        paths.append(tmp_path / f"chunk{i}.npz")
    merged = merge_labels(paths)
    assert set(merged) == set(whole)
    for key in whole:
        # SCF restarts from the previous frame: chunking changes results at SCF tolerance only
        np.testing.assert_allclose(merged[key], whole[key], rtol=0, atol=1e-3, err_msg=key)
    assert load_labels(paths[0], methane)["E"].shape == (3,)
    with pytest.raises(DatasetError, match="do not cover frames"):
        merge_labels(paths[::-1])
    with pytest.raises(DatasetError, match="do not cover frames"):
        merge_labels(paths[1:])


def test_chunk_indices_errors():
    with pytest.raises(ConfigError, match="n_chunks"):
        chunk_indices(3, 4)
    with pytest.raises(ConfigError, match="n_chunks"):
        chunk_indices(3, 0)


def test_load_labels_checks_system(methane, water_benzene, tmp_path):
    labels = label_frames(methane, jiggle(methane, 1), None, progress=quiet)
    save_labels(labels, tmp_path / "l.npz")
    with pytest.raises(DatasetError, match="atomic numbers differ"):
        load_labels(tmp_path / "l.npz", water_benzene)


def test_scf_failure_names_frame(methane):
    idx = np.array([7, 8])
    with pytest.raises(LabellingError, match="frame 7: calculation failed: SCF not converged"):
        label_frames(methane, jiggle(methane, 2), spec({"max_iterations": 1}), quiet, idx)
