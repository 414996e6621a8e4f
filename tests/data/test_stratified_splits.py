"""Energy-stratified sampling (Freedman–Diaconis bins, proportional quotas)."""

import numpy as np
import pytest

from deltagdml.data.splits import stratified_sample, train_valid_test_split
from deltagdml.errors import DatasetError


def test_quota_per_energy_bin_is_proportional():
    rng = np.random.default_rng(0)
    E = np.concatenate([rng.normal(0, 1, 900), rng.normal(20, 1, 100)])  # 10 % high tail
    in_tail = []
    for seed in range(8):
        idx = stratified_sample(E, 100, np.random.default_rng(seed))
        assert np.unique(idx).size == 100
        in_tail.append(int(np.sum(E[idx] > 10)))
    # quotas are fixed per bin: the same share of the tail for every seed (a uniform draw
    # would scatter it binomially, ±3), and close to the tail's 10 % population share
    assert len(set(in_tail)) == 1 and 8 <= in_tail[0] <= 12


def test_exclusion_and_determinism():
    E = np.random.default_rng(1).normal(size=300)
    first = stratified_sample(E, 50, np.random.default_rng(7))
    second = stratified_sample(E, 50, np.random.default_rng(7), exclude=first)
    assert np.intersect1d(first, second).size == 0
    np.testing.assert_array_equal(first, stratified_sample(E, 50, np.random.default_rng(7)))


def test_split_is_disjoint_and_seeded():
    E = np.random.default_rng(2).normal(size=500)
    a = train_valid_test_split(E, 100, 50, 200, seed=3)
    b = train_valid_test_split(E, 100, 50, 200, seed=4)
    assert sum(len(v) for v in a.values()) == np.unique(np.concatenate(list(a.values()))).size
    assert not np.array_equal(a["train"], b["train"])


def test_too_many_points_requested():
    with pytest.raises(DatasetError, match="exceeds the 10 geometries"):
        train_valid_test_split(np.arange(10.0), 5, 5, 5, seed=0)
    with pytest.raises(DatasetError, match="only 3 of 10 geometries are left"):
        stratified_sample(np.arange(10.0), 4, np.random.default_rng(0), exclude=np.arange(7))


def test_without_energies_the_draw_is_uniform_and_seeded():
    split = train_valid_test_split(None, 30, 10, 20, seed=4, n_geometries=100)
    again = train_valid_test_split(None, 30, 10, 20, seed=4, n_geometries=100)
    for key in ("train", "valid", "test"):
        np.testing.assert_array_equal(split[key], again[key])
    drawn = np.concatenate(list(split.values()))
    assert np.unique(drawn).size == 60 and drawn.max() < 100
    counts = np.zeros(100)
    for seed in range(400):
        counts[stratified_sample(None, 10, np.random.default_rng(seed), n_geometries=100)] += 1
    assert counts.min() > 15 and counts.max() < 70  # each index drawn ~40 times
    with pytest.raises(DatasetError, match="number of geometries"):
        stratified_sample(None, 3, np.random.default_rng(0))
