"""Train/validation/test index splits shared by the full and the Δ models.

Splits are drawn once on the complex energies and reused for every dataset of a system,
so that all models are trained and tested on the same geometries. In memory a split is
``{"train", "valid", "test"}``; files store ``idxs_train``, ``idxs_valid``, ``idxs_test``.
"""

from __future__ import annotations

import os

import numpy as np

from ..atomic_io import save_npz_atomic
from ..errors import ConfigError, DatasetError
from ..npz_io import read_npz
from ..sampling import train_valid_test_split

PARTS = ("train", "valid", "test")


def make_splits(
    E: np.ndarray, n_train: int, n_valid: int, n_test: int, seed: int
) -> dict[str, np.ndarray]:
    """Disjoint energy-stratified index sets, deterministic for ``seed``."""
    for key, n in zip(PARTS, (n_train, n_valid, n_test), strict=True):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ConfigError(f"splits: n_{key} must be a non-negative integer, got {n!r}")
    if n_train < 1:
        raise ConfigError("splits: n_train must be at least 1")
    return train_valid_test_split(np.asarray(E, dtype=float), n_train, n_valid, n_test, seed)


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


def save_splits(
    splits: dict[str, np.ndarray], path: str | os.PathLike, n_geometries: int | None = None
) -> None:
    """Validate and write splits atomically (``n_geometries`` is stored if given)."""
    _validate(splits, n_geometries, str(path))
    arrays = {f"idxs_{part}": np.asarray(splits[part], dtype=np.int64) for part in PARTS}
    if n_geometries is not None:
        arrays["n_geometries"] = np.array(n_geometries)
    save_npz_atomic(path, **arrays)


def load_splits(path: str | os.PathLike, n_geometries: int | None = None) -> dict[str, np.ndarray]:
    """Read splits; check disjointness and range (against ``n_geometries`` if given).

    A file written with ``n_geometries`` must match the given value, so that splits drawn
    for one dataset are not silently applied to another.
    """
    data = read_npz(path, {f"idxs_{part}" for part in PARTS}, "splits")
    stored = int(data["n_geometries"]) if "n_geometries" in data else None
    if stored is not None and n_geometries is not None and stored != n_geometries:
        raise DatasetError(
            f"{path}: splits were drawn for {stored} geometries, dataset has {n_geometries}"
        )
    splits = {part: data[f"idxs_{part}"] for part in PARTS}
    _validate(splits, n_geometries if n_geometries is not None else stored, str(path))
    return splits
