"""Energy-stratified sampling of training, validation and test indices.

As in sGDML: the energy range is cut into Freedman–Diaconis histogram bins and each
bin receives a quota proportional to its population, so that rare high-energy
configurations are represented. Quotas are rounded with the largest-remainder rule,
which makes the draw deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np

from .errors import DatasetError


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
) -> np.ndarray:
    """Draw ``n`` distinct indices into ``E``, stratified by energy, avoiding ``exclude``.

    Without energies (``E is None``) the draw is uniform. Returned indices are sorted.
    """
    if n < 0:
        raise DatasetError(f"cannot draw a negative number of points ({n})")
    if E is None:
        raise DatasetError("stratified sampling needs energies; pass E or use uniform sampling")
    E = np.asarray(E, dtype=float).ravel()
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


def train_valid_test_split(
    E: np.ndarray,
    n_train: int,
    n_valid: int,
    n_test: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Disjoint, energy-stratified train/valid/test indices drawn with ``seed``."""
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
