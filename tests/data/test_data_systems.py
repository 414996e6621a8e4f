"""Systems: default configs, fragment validation, connectivity, ion placement."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import ase.io  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ase.collections import s22  # noqa: E402

from deltagdml.data.systems import (
    DEFAULT_SYSTEMS,
    fragment_atoms,
    ring_axis_point,
    system_from_config,
)
from deltagdml.errors import ConfigError  # noqa: E402

REPO = Path(__file__).parents[2]
SMALL = ["methane_dimer", "benzene_dimer", "water_benzene", "na_benzene"]
FORMULAS = {
    "methane_dimer": ["CH4", "CH4"],
    "benzene_dimer": ["C6H6", "C6H6"],
    "water_benzene": ["C6H6", "H2O"],
    "na_benzene": ["C6H6", "Na"],
}


@pytest.mark.parametrize("name", SMALL)
def test_default_systems_load_with_chemically_right_fragments(name):
    system = system_from_config(name, DEFAULT_SYSTEMS[name])
    formulas = [fragment_atoms(system, k).get_chemical_formula() for k in range(2)]
    assert formulas == FORMULAS[name]
    assert system.charge == sum(system.fragment_charges)
    assert system.n_atoms == sum(len(f) for f in system.fragments)


def test_na_benzene_is_a_cation_with_charged_ion_fragment():
    system = system_from_config("na_benzene", DEFAULT_SYSTEMS["na_benzene"])
    assert system.charge == 1 and system.fragment_charges == [0, 1]
    ion = fragment_atoms(system, 1)
    assert ion.info == {"fragment": 1, "charge": 1, "multiplicity": 1}


def test_c60_buckycatcher_loads_from_the_packaged_structure():
    assert Path(DEFAULT_SYSTEMS["c60_buckycatcher"]["structure"]).is_relative_to(REPO)
    system = system_from_config("c60", DEFAULT_SYSTEMS["c60_buckycatcher"], base_dir=REPO)
    assert [len(f) for f in system.fragments] == [60, 88]
    assert fragment_atoms(system, 0).get_chemical_formula() == "C60"
    assert fragment_atoms(system, 1).get_chemical_formula() == "C60H28"
    cfg = {**DEFAULT_SYSTEMS["c60_buckycatcher"], "fragments": "connectivity"}
    derived = system_from_config("c60", cfg, base_dir=REPO)
    np.testing.assert_array_equal(np.concatenate(derived.fragments), np.arange(148))
    assert [len(f) for f in derived.fragments] == [60, 88]


@pytest.mark.parametrize("name", ["methane_dimer", "benzene_dimer", "water_benzene"])
def test_connectivity_fragments_equal_explicit_ones(name):
    explicit = system_from_config(name, DEFAULT_SYSTEMS[name])
    cfg = {**DEFAULT_SYSTEMS[name], "fragments": "connectivity"}
    derived = system_from_config(name, cfg)
    assert len(derived.fragments) == len(explicit.fragments)
    for a, b in zip(derived.fragments, explicit.fragments, strict=True):
        np.testing.assert_array_equal(a, b)


def test_range_strings_equal_index_lists():
    cfg = {"structure": "Benzene-water_complex", "fragments": ["0-11", "12,13-14"]}
    system = system_from_config("wb", cfg)
    np.testing.assert_array_equal(system.fragments[0], np.arange(12))
    np.testing.assert_array_equal(system.fragments[1], [12, 13, 14])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"fragments": [list(range(12)), [11, 12, 13, 14]]}, r"overlap: atoms \[11\]"),
        ({"fragments": [list(range(12)), [12, 13]]}, r"atoms \[14\] belong to no fragment"),
        ({"fragments": [list(range(12)), [12, 13, 15]]}, r"indices \[15\] out of range"),
        ({"fragments": [list(range(15))]}, "at least 2 fragments"),
        ({"charges": [0, 1], "charge": 0}, "differs from the sum of fragment charges"),
        ({"charges": [0]}, "one integer per fragment"),
        ({"multiplicities": [1, 2]}, "multiplicity 2 is impossible"),
        ({"fragments": "by-magic"}, "'fragments' must be a list"),
        ({"structure": "Not_an_S22_name"}, "neither an S22 name nor an existing file"),
        ({"structure": {"base": "Benzene-water_complex", "shift": 1}}, "structure dict"),
    ],
)
def test_invalid_configs_raise_config_error_naming_the_problem(change, message):
    cfg = {**DEFAULT_SYSTEMS["water_benzene"], **change}
    with pytest.raises(ConfigError, match=message) as info:
        system_from_config("my_system", cfg)
    assert "my_system" in str(info.value)


def test_structure_file_relative_to_base_dir(tmp_path):
    ase.io.write(tmp_path / "wb.xyz", s22["Benzene-water_complex"])
    cfg = {"structure": "wb.xyz", "fragments": "connectivity"}
    system = system_from_config("wb", cfg, base_dir=tmp_path)
    np.testing.assert_allclose(system.atoms.positions, s22["Benzene-water_complex"].positions)
    with pytest.raises(ConfigError, match="missing.xyz"):
        system_from_config("wb", {**cfg, "structure": "missing.xyz"}, base_dir=tmp_path)


def test_ring_axis_point_on_regular_hexagon():
    angles = np.arange(6) * np.pi / 3
    ring = np.stack([np.cos(angles), np.sin(angles), np.zeros(6)], axis=1) * 1.4 + [1, 2, 3]
    np.testing.assert_allclose(ring_axis_point(ring, range(6), 2.4), [1, 2, 5.4], atol=1e-12)
    np.testing.assert_allclose(ring_axis_point(ring, range(6), -2.4), [1, 2, 0.6], atol=1e-12)


def test_na_placed_on_benzene_axis_at_2_4_angstrom():
    system = system_from_config("na_benzene", DEFAULT_SYSTEMS["na_benzene"])
    pos = system.atoms.positions
    carbons = pos[:6]
    np.testing.assert_array_equal(system.atoms.numbers[:6], 6)
    centroid = carbons.mean(axis=0)
    na = pos[12] - centroid
    assert system.atoms.get_chemical_symbols()[12] == "Na"
    assert np.linalg.norm(na) == pytest.approx(2.4, abs=1e-9)
    # on the normal: perpendicular to every centroid -> carbon vector
    np.testing.assert_allclose((carbons - centroid) @ na / 2.4, 0.0, atol=1e-3)
    # equidistant from all six carbons
    d = np.linalg.norm(carbons - pos[12], axis=1)
    np.testing.assert_allclose(d, d.mean(), atol=1e-3)
    # benzene geometry is the S22 one
    np.testing.assert_allclose(pos[:12], s22["Benzene-water_complex"].positions[:12])
