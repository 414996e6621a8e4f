"""Train/validation/test index splits shared by the full and the Δ models.

Splits are drawn once on the complex energies and reused for every dataset of a system,
so that all models are trained and tested on the same geometries. In memory a split is
``{"train", "valid", "test"}``; files store ``idxs_train``, ``idxs_valid``, ``idxs_test``.

Models may train on different numbers of geometries (``training.parts``): ``train`` is
then the pool of the largest part, and every part trained on fewer geometries gets its
own energy-stratified subset of that pool, ``train_<part>`` (file key ``idxs_train_<part>``).
Validation and test sets are the same for all parts.
"""

from __future__ import annotations

import os
import zlib

import numpy as np

from deltagdml.atomic_io import save_npz_atomic
from deltagdml.errors import ConfigError, DatasetError
from deltagdml.npz_io import read_npz


def _bin_labels(E: np.ndarray, n: int) -> np.ndarray:
    """Histogram bin of each energy, with Freedman–Diaconis bin width for ``n`` draws."""
    q75, q25 = np.percentile(E, [75, 25])
    width = 2.0 * (q75 - q25) / np.cbrt(n)
    span = E.max() - E.min()
    n_bins = int(np.ceil(span / width)) if width > 0 and span > 0 else 1
    n_bins = max(1, min(n_bins, max(1, n // 2)))
    edges = np.linspace(E.min(), E.max(), n_bins + 1)
    return np.clip(np.digitize(E, edges[1:-1]), 0, n_bins - 1)


def stratified_sample(
    E: np.ndarray | None,
    n: int,
    rng: np.random.Generator,
    exclude: np.ndarray | None = None,
    n_geometries: int | None = None,
) -> np.ndarray:
    """Draw ``n`` distinct indices into ``E``, stratified by energy, avoiding ``exclude``.

    Without energies (``E is None``) the draw is uniform over ``n_geometries`` indices.
    Returned indices are sorted.
    """
    if n < 0:
        raise DatasetError(f"cannot draw a negative number of points ({n})")
    E = _energies(E, n_geometries)
    available = np.ones(E.shape[0], dtype=bool)
    if exclude is not None and len(exclude):
        available[np.asarray(exclude, dtype=int)] = False
    pool = np.flatnonzero(available)
    if n > pool.size:
        raise DatasetError(
            f"cannot draw {n} points: only {pool.size} of {E.shape[0]} geometries are left"
        )
    if n == 0:
        return np.empty(0, dtype=int)
    labels = _bin_labels(E[pool], n)
    bins, counts = np.unique(labels, return_counts=True)
    exact = counts / counts.sum() * n
    quota = np.minimum(np.floor(exact).astype(int), counts)
    remainder = exact - quota
    while quota.sum() < n:
        room = quota < counts
        order = np.argsort(-np.where(room, remainder, -np.inf), kind="stable")
        for b in order[: n - quota.sum()]:
            if quota[b] < counts[b]:
                quota[b] += 1
                remainder[b] = -np.inf
        remainder = np.where(quota < counts, exact - quota, -np.inf)
    chosen = [
        rng.choice(pool[labels == b], size=q, replace=False)
        for b, q in zip(bins, quota, strict=True)
        if q
    ]
    return np.sort(np.concatenate(chosen))


def _energies(E: np.ndarray | None, n_geometries: int | None) -> np.ndarray:
    """``E`` as a flat float array; without energies, equal ones (one stratum: uniform)."""
    if E is not None:
        return np.asarray(E, dtype=float).ravel()
    if n_geometries is None:
        raise DatasetError("sampling without energies needs the number of geometries")
    return np.zeros(n_geometries)


def train_valid_test_split(
    E: np.ndarray | None,
    n_train: int,
    n_valid: int,
    n_test: int,
    seed: int,
    n_geometries: int | None = None,
) -> dict[str, np.ndarray]:
    """Disjoint, energy-stratified train/valid/test indices drawn with ``seed`` (uniform
    over ``n_geometries`` without energies)."""
    E = _energies(E, n_geometries)
    total = n_train + n_valid + n_test
    if total > len(E):
        raise DatasetError(
            f"train+valid+test = {n_train}+{n_valid}+{n_test} = {total} exceeds the "
            f"{len(E)} geometries in the dataset"
        )
    rng = np.random.default_rng(seed)
    train = stratified_sample(E, n_train, rng)
    valid = stratified_sample(E, n_valid, rng, exclude=train)
    test = stratified_sample(E, n_test, rng, exclude=np.concatenate([train, valid]))
    return {"train": train, "valid": valid, "test": test}


PARTS = ("train", "valid", "test")


def make_splits(
    E: np.ndarray | None,
    n_train: int,
    n_valid: int,
    n_test: int,
    seed: int,
    part_sizes: dict[str, int] | None = None,
    n_geometries: int | None = None,
) -> dict[str, np.ndarray]:
    """Disjoint energy-stratified index sets, deterministic for ``seed`` (uniform over
    ``n_geometries`` without energies).

    With ``part_sizes`` (n_train per model part), ``n_train`` must be their maximum; each
    smaller part gets a subset ``train_<part>`` of the training pool.
    """
    for key, n in zip(PARTS, (n_train, n_valid, n_test), strict=True):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ConfigError(f"splits: n_{key} must be a non-negative integer, got {n!r}")
    if n_train < 1:
        raise ConfigError("splits: n_train must be at least 1")
    E = _energies(E, n_geometries)
    splits = train_valid_test_split(E, n_train, n_valid, n_test, seed)
    pool = splits["train"]
    for part, n in sorted((part_sizes or {}).items()):
        if not 1 <= n <= n_train:
            raise ConfigError(f"splits: n_train of '{part}' must lie in [1, {n_train}], got {n}")
        if n < n_train:
            rng = np.random.default_rng([seed, zlib.crc32(part.encode())])
            splits[f"train_{part}"] = pool[stratified_sample(E[pool], n, rng)]
    return splits


def train_indices(splits: dict[str, np.ndarray], part: str) -> np.ndarray:
    """The geometries model ``part`` trains on."""
    return splits.get(f"train_{part}", splits["train"])


def union_train_indices(splits: dict[str, np.ndarray], parts: list[str]) -> np.ndarray:
    """The distinct geometries any of ``parts`` trains on, sorted."""
    return np.unique(np.concatenate([train_indices(splits, p) for p in parts]))


def _validate(splits: dict, n_geometries: int | None, source: str) -> None:
    seen = np.zeros(0, dtype=int)
    for part in PARTS:
        idx = np.asarray(splits[part])
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise DatasetError(f"{source}: '{part}' indices must be a 1-D integer array")
        if np.unique(idx).size != idx.size:
            raise DatasetError(f"{source}: '{part}' indices contain duplicates")
        if idx.size and (idx.min() < 0 or (n_geometries is not None and idx.max() >= n_geometries)):
            raise DatasetError(
                f"{source}: '{part}' indices out of range for {n_geometries} geometries"
            )
        overlap = np.intersect1d(seen, idx)
        if overlap.size:
            raise DatasetError(
                f"{source}: '{part}' overlaps other splits at {overlap[:10].tolist()}"
            )
        seen = np.concatenate([seen, idx])
    for key in sorted(set(splits) - set(PARTS)):
        idx = np.asarray(splits[key])
        if (
            not key.startswith("train_")
            or idx.ndim != 1
            or not np.issubdtype(idx.dtype, np.integer)
        ):
            raise DatasetError(f"{source}: '{key}' is not a 1-D integer index array of a part")
        if np.setdiff1d(idx, splits["train"]).size or np.unique(idx).size != idx.size:
            raise DatasetError(f"{source}: '{key}' is not a subset of the training indices")


def save_splits(
    splits: dict[str, np.ndarray], path: str | os.PathLike, n_geometries: int | None = None
) -> None:
    """Validate and write splits atomically (``n_geometries`` is stored if given)."""
    _validate(splits, n_geometries, str(path))
    arrays = {f"idxs_{key}": np.asarray(idx, dtype=np.int64) for key, idx in splits.items()}
    if n_geometries is not None:
        arrays["n_geometries"] = np.array(n_geometries)
    save_npz_atomic(path, **arrays)


def load_splits(path: str | os.PathLike, n_geometries: int | None = None) -> dict[str, np.ndarray]:
    """Read splits; check disjointness and range (against ``n_geometries`` if given).

    A file written with ``n_geometries`` must match the given value, so that splits drawn
    for one dataset are not silently applied to another.
    """
    data = read_npz(path, {f"idxs_{part}" for part in PARTS}, "splits")
    extra = [key for key in data if key.startswith("idxs_train_")]
    stored = int(data["n_geometries"]) if "n_geometries" in data else None
    if stored is not None and n_geometries is not None and stored != n_geometries:
        raise DatasetError(
            f"{path}: splits were drawn for {stored} geometries, dataset has {n_geometries}"
        )
    splits = {part: data[f"idxs_{part}"] for part in PARTS}
    splits.update({key.removeprefix("idxs_"): data[key] for key in extra})
    _validate(splits, n_geometries if n_geometries is not None else stored, str(path))
    return splits
