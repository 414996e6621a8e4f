"""Tests for bond-graph permutation symmetries and sGDML descriptor permutations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase.build import molecule
from ase.collections import s22
from scipy.linalg import block_diag
from scipy.spatial.transform import Rotation

from deltagdml.errors import DatasetError
from deltagdml.gdml.symmetry import (
    bond_graph,
    close_group,
    descriptor_permutation,
    find_permutations,
    graph_automorphisms,
    tril_perms_lin,
    validate_permutations,
)

EXPECTED_ORDERS = {
    "C6H6": 12,
    "CH4": 24,
    "C60": 120,
    "Benzene-water_complex": 24,
    "Methane_dimer": 1152,
    "Benzene_dimer_parallel_displaced": 288,
}


def _atoms(name):
    return s22[name] if name in s22.names else molecule(name)


def _descriptor(R: np.ndarray) -> np.ndarray:
    """Inverse distances over np.tril_indices(N, -1)."""
    i, j = np.tril_indices(len(R), -1)
    return 1.0 / np.linalg.norm(R[i] - R[j], axis=1)


def _cycle(n: int) -> np.ndarray:
    adjacency = np.zeros((n, n), dtype=bool)
    i = np.arange(n)
    adjacency[i, (i + 1) % n] = adjacency[(i + 1) % n, i] = True
    return adjacency


def _frucht() -> np.ndarray:
    """Frucht graph: 3-regular, so refinement splits nothing, yet its group is trivial."""
    adjacency = _cycle(12)
    for i, jump in enumerate([-5, -2, -4, 2, 5, -2, 2, 5, -2, -5, 4, 2]):
        adjacency[i, (i + jump) % 12] = adjacency[(i + jump) % 12, i] = True
    return adjacency


def _brute_force_automorphisms(adjacency: np.ndarray, colors: np.ndarray) -> np.ndarray:
    perms = [
        p
        for p in itertools.permutations(range(len(colors)))
        if np.array_equal(colors[list(p)], colors)
        and np.array_equal(adjacency[np.ix_(p, p)], adjacency)
    ]
    return np.array(sorted(perms))


@pytest.fixture(scope="module")
def found():
    return {
        name: (find_permutations(_atoms(name).positions, _atoms(name).numbers), _atoms(name))
        for name in EXPECTED_ORDERS
    }


@pytest.mark.parametrize("name", EXPECTED_ORDERS)
def test_group_order(found, name):
    perms, _ = found[name]
    assert perms.shape == (EXPECTED_ORDERS[name], len(_atoms(name)))


@pytest.mark.parametrize("name", EXPECTED_ORDERS)
def test_found_set_is_valid_group_of_bond_automorphisms(found, name):
    perms, atoms = found[name]
    z = atoms.numbers
    assert perms.dtype == np.int64
    np.testing.assert_array_equal(perms[0], np.arange(len(z)))
    np.testing.assert_array_equal(validate_permutations(perms, z), perms)
    adjacency = bond_graph(atoms.positions, z)
    for perm in perms:
        np.testing.assert_array_equal(adjacency[np.ix_(perm, perm)], adjacency)


@pytest.mark.parametrize("name", EXPECTED_ORDERS)
def test_descriptor_of_permuted_geometry(found, name):
    perms, atoms = found[name]
    R = atoms.positions
    x = _descriptor(R)
    for perm in perms:
        np.testing.assert_allclose(_descriptor(R[perm]), x[descriptor_permutation(perm)])


@pytest.mark.parametrize(("name", "rtol"), [("C6H6", 1e-6), ("CH4", 1e-6), ("C60", 5e-3)])
def test_symmetric_geometries_are_invariant(found, name, rtol):
    """For a symmetric structure every bond-graph automorphism is a geometric symmetry.

    ase's C60 is Ih only to ~0.2 %; a wrong map would swap 1.40 and 1.45 A bonds (3 %).
    """
    perms, atoms = found[name]
    x = _descriptor(atoms.positions)
    for perm in perms:
        np.testing.assert_allclose(x[descriptor_permutation(perm)], x, rtol=rtol)


def test_sample_independence():
    atoms = s22["Benzene-water_complex"]
    rng = np.random.default_rng(0)
    centred = atoms.positions - atoms.positions.mean(axis=0)
    rotations = Rotation.random(200, random_state=rng).as_matrix()
    R = np.einsum("mij,nj->mni", rotations, centred)
    R += rng.normal(scale=0.05, size=R.shape)
    reference = find_permutations(R, atoms.numbers)
    assert len(reference) == 24
    for _ in range(6):
        subset = rng.choice(len(R), size=20, replace=False)
        np.testing.assert_array_equal(find_permutations(R[subset], atoms.numbers), reference)


def test_median_ignores_outlier_geometries():
    atoms = molecule("C6H6")
    R = np.repeat(atoms.positions[None], 5, axis=0)
    R[0, 6] += 2.0  # an H pulled far from its carbon in one geometry
    R[1, 0] = R[1, 7] + [0.1, 0, 0]  # a C pushed onto another H in another
    np.testing.assert_array_equal(bond_graph(R, atoms.numbers), bond_graph(R[2], atoms.numbers))


def test_find_permutations_is_deterministic():
    atoms = s22["Methane_dimer"]
    first = find_permutations(atoms.positions, atoms.numbers)
    np.testing.assert_array_equal(find_permutations(atoms.positions, atoms.numbers), first)


def test_max_perms_exceeded_reports_group_size():
    atoms = s22["Methane_dimer"]
    with pytest.raises(DatasetError, match=r"1152.*'none'"):
        find_permutations(atoms.positions, atoms.numbers, max_perms=1000)


def test_bond_graph_rejects_bad_input():
    R = np.zeros((3, 3))
    with pytest.raises(DatasetError, match="shape"):
        bond_graph(np.zeros((3, 2)), [1, 1, 1])
    with pytest.raises(DatasetError, match="z must have shape"):
        bond_graph(R, np.array([1, 1]))
    with pytest.raises(DatasetError, match="atomic numbers"):
        bond_graph(R, np.array([1, 0, 1]))
    with pytest.raises(DatasetError, match="non-finite"):
        bond_graph(np.full((3, 3), np.nan), np.array([1, 1, 1]))


@pytest.mark.parametrize(
    ("adjacency", "order"),
    [
        (np.zeros((1, 1), dtype=bool), 1),
        (np.zeros((4, 4), dtype=bool), 24),
        (_cycle(7), 14),
        (np.ones((5, 5), dtype=bool) & ~np.eye(5, dtype=bool), 120),
        # 2-regular: refinement leaves one cell, but triangle and hexagon atoms differ
        (block_diag(_cycle(3), _cycle(3), _cycle(6)).astype(bool), 72 * 12),
        (_frucht(), 1),
    ],
)
def test_automorphisms_of_small_graphs(adjacency, order):
    perms = graph_automorphisms(adjacency, np.zeros(len(adjacency), dtype=int), max_perms=1000)
    assert len(perms) == order
    validate_permutations(perms, np.zeros(len(adjacency), dtype=int))


def test_petersen_graph():
    """Strongly regular: colour refinement alone splits nothing, so the search must branch."""
    outer, inner = np.arange(5), np.arange(5, 10)
    adjacency = np.zeros((10, 10), dtype=bool)
    for a, b in [
        *zip(outer, np.roll(outer, 1), strict=True),
        *zip(outer, inner, strict=True),
        *zip(inner, np.roll(inner, 2), strict=True),
    ]:
        adjacency[a, b] = adjacency[b, a] = True
    assert len(graph_automorphisms(adjacency, np.zeros(10, dtype=int), max_perms=1000)) == 120


@pytest.mark.parametrize("seed", range(12))
def test_automorphisms_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    adjacency = np.triu(rng.random((n, n)) < rng.uniform(0.1, 0.6), 1)
    adjacency |= adjacency.T
    colors = rng.integers(0, 2, size=n) * 6 + 1
    perms = graph_automorphisms(adjacency, colors, max_perms=10_000)
    np.testing.assert_array_equal(perms, _brute_force_automorphisms(adjacency, colors))


def test_graph_automorphisms_rejects_bad_input():
    with pytest.raises(DatasetError, match="square"):
        graph_automorphisms(np.zeros((2, 3), dtype=bool), np.zeros(2), max_perms=10)
    with pytest.raises(DatasetError, match="symmetric"):
        graph_automorphisms(np.triu(np.ones((3, 3), dtype=bool), 1), np.zeros(3), max_perms=10)
    with pytest.raises(DatasetError, match="colors"):
        graph_automorphisms(np.zeros((3, 3), dtype=bool), np.zeros(2), max_perms=10)
    with pytest.raises(DatasetError, match="empty"):
        graph_automorphisms(np.zeros((0, 0), dtype=bool), np.zeros(0), max_perms=10)


def test_close_group():
    rotation = np.roll(np.arange(6), 1)
    reflection = (-np.arange(6)) % 6
    assert len(close_group([rotation])) == 6
    group = close_group([reflection, rotation])
    assert len(group) == 12
    np.testing.assert_array_equal(group[0], np.arange(6))
    np.testing.assert_array_equal(validate_permutations(group, np.ones(6, dtype=int)), group)
    with pytest.raises(DatasetError, match="max_perms=10"):
        close_group([reflection, rotation], max_perms=10)
    with pytest.raises(DatasetError, match="not a permutation"):
        close_group([[0, 0, 1]])


class TestValidatePermutations:
    z = np.array([6, 1, 1, 1, 1])  # methane: C first

    def group(self):
        return find_permutations(molecule("CH4").positions, molecule("CH4").numbers)

    def test_accepts_group_in_any_order_and_sorts_it(self):
        group = self.group()
        shuffled = group[np.random.default_rng(1).permutation(len(group))]
        np.testing.assert_array_equal(validate_permutations(shuffled.tolist(), self.z), group)

    def test_rejects_non_permutation(self):
        with pytest.raises(DatasetError, match="permutation 1 is not a permutation"):
            validate_permutations([[0, 1, 2, 3, 4], [0, 1, 1, 3, 4]], self.z)

    def test_rejects_element_swap(self):
        with pytest.raises(DatasetError, match=r"maps atom 0 \(Z=6\) to atom 1 \(Z=1\)"):
            validate_permutations([[0, 1, 2, 3, 4], [1, 0, 2, 3, 4]], self.z)

    def test_rejects_non_closed_set(self):
        with pytest.raises(DatasetError, match="not closed"):
            validate_permutations([[0, 1, 2, 3, 4], [0, 2, 3, 1, 4]], self.z)
        with pytest.raises(DatasetError, match="not closed"):
            validate_permutations(self.group()[:-1], self.z)

    def test_rejects_wrong_length(self):
        with pytest.raises(DatasetError, match="length 4 but the molecule has 5 atoms"):
            validate_permutations([[0, 1, 2, 3]], self.z)

    def test_rejects_missing_identity_duplicates_and_floats(self):
        with pytest.raises(DatasetError, match="identity"):
            validate_permutations([[0, 2, 1, 3, 4]], self.z)
        with pytest.raises(DatasetError, match="duplicates"):
            validate_permutations([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]], self.z)
        with pytest.raises(DatasetError, match="integers"):
            validate_permutations(np.array([[0.0, 1, 2, 3, 4]]), self.z)
        with pytest.raises(DatasetError, match="shape"):
            validate_permutations(np.arange(5), self.z)


def test_descriptor_permutation_by_hand():
    # pairs (1,0), (2,0), (2,1); swapping atoms 0 and 1 swaps (2,0) and (2,1)
    np.testing.assert_array_equal(descriptor_permutation(np.array([1, 0, 2])), [0, 2, 1])


def test_descriptor_permutation_random():
    rng = np.random.default_rng(3)
    R = rng.normal(size=(9, 3)) * 3
    perm = rng.permutation(9)
    dperm = descriptor_permutation(perm)
    np.testing.assert_allclose(_descriptor(R)[dperm], _descriptor(R[perm]))
    assert sorted(dperm) == list(range(36))


def test_tril_perms_lin_layout():
    perms = find_permutations(molecule("CH4").positions, molecule("CH4").numbers)
    lin = tril_perms_lin(perms)
    n_perms, dim = len(perms), 10
    assert lin.shape == (n_perms * dim,)
    for p, d in itertools.product(range(n_perms), range(dim)):
        assert lin[d * n_perms + p] == descriptor_permutation(perms[p])[d] + p * dim
    # every entry of the stacked (P * D) descriptor vector is hit exactly once
    assert sorted(lin) == list(range(n_perms * dim))
