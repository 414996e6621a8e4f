"""Learning curves: test errors of the full and Δ models versus training-set size.

Training sets are nested: the set of size n holds the first n indices of a seeded permutation
of the system's train split, so each set contains every smaller one. The validation set (σ
choice) and the test set are the system's fixed splits. At each size the full model and the
Δ model (one model per multi-atom fragment plus the binding model, all on the same indices)
are trained with :func:`deltagdml.gdml.selection.select_sigma` and the system's training settings.
A size equal to the whole train split reuses the pipeline's models, trained on the same
indices with the same settings.

Slopes b are least-squares fits of log10(MAE) = a + b·log10(n).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from deltagdml.data.splits import train_indices
from deltagdml.gdml.composite import DeltaModel
from deltagdml.gdml.dataset import Dataset
from deltagdml.gdml.metrics import E_MAE, F_MAE, error_summary
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.selection import select_sigma_configured
from deltagdml.settings import TrainingSettings

log = logging.getLogger(__name__)

MODELS = ("full", "delta")
FITTED = (F_MAE, E_MAE)


def nested_subsets(train: np.ndarray, sizes: list[int], seed: int) -> dict[int, np.ndarray]:
    """Sorted index sets of each size: prefixes of one seeded permutation of ``train``."""
    train = np.asarray(train, dtype=int)
    if max(sizes) > train.size:
        raise ValueError(f"size {max(sizes)} exceeds the {train.size} training geometries")
    order = np.random.default_rng(seed).permutation(train)
    return {n: np.sort(order[:n]) for n in sizes}


def loglog_fit(n: np.ndarray, err: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of log10(err) against log10(n); NaN for < 2 usable points."""
    n, err = np.asarray(n, dtype=float), np.asarray(err, dtype=float)
    ok = (n > 0) & (err > 0) & np.isfinite(err)
    if np.unique(n[ok]).size < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log10(n[ok]), np.log10(err[ok]), 1)
    return float(slope), float(intercept)


def fit_part(
    ds: Dataset,
    train: np.ndarray,
    valid: np.ndarray,
    settings: TrainingSettings,
    perms: np.ndarray | str,
) -> GDMLModel:
    """One sGDML model on ``ds[train]`` with σ chosen on ``ds[valid]``."""
    model, _ = select_sigma_configured(ds.subset(train), ds.subset(valid), settings, perms)
    return model


def _sigmas(models: dict[str, GDMLModel], parts: list[str]) -> str:
    return ";".join(f"{p}={models[p].sigma:g}" for p in parts)


def learning_curve(
    datasets: dict[str, Dataset],
    fragments: list[np.ndarray],
    constants: dict[int, float],
    splits: dict[str, np.ndarray],
    sizes: list[int],
    settings: dict[str, TrainingSettings],
    perms: dict[str, np.ndarray | str],
    seed: int,
    pretrained: dict[str, GDMLModel] | None = None,
) -> pd.DataFrame:
    """Test errors (kcal/mol, kcal/mol/Å) of both models at each size; one row per size/model.

    ``datasets`` holds ``full``, ``binding`` and ``fragment_k`` of every multi-atom fragment;
    ``settings`` and ``perms`` map each part to its training settings and symmetries. The sizes are
    nested subsets of the full model's training geometries; ``pretrained`` (same keys) is
    used for the size equal to that whole set.
    The table holds no wall times, so identical runs give identical files.
    """
    full = datasets["full"]
    test = full.subset(splits["test"])
    parts = [p for p in datasets if p != "full"]
    rows = []
    train = train_indices(splits, "full")
    # the pipeline's models fit the largest size only if every part trained on that set
    same_sets = all(np.array_equal(train_indices(splits, p), train) for p in datasets)
    for n, idx in nested_subsets(train, sizes, seed).items():
        reuse = pretrained is not None and same_sets and n == len(train)
        models = {
            p: pretrained[p] if reuse else fit_part(ds, idx, splits["valid"], settings[p], perms[p])
            for p, ds in datasets.items()
        }
        log.info("n_train=%d: models %s", n, "reused" if reuse else "trained")
        delta = DeltaModel.from_parts(full.z, fragments, models, constants)
        for label, model, used in (("full", models["full"], ["full"]), ("delta", delta, parts)):
            E, F = model.predict(test.R)
            rows.append(
                {
                    "model": label,
                    "n_train": n,
                    **error_summary(E, F, test.E, test.F),
                    "sigma": _sigmas(models, used),
                    "source": "pipeline models" if reuse else "trained",
                }
            )
    return pd.DataFrame(rows)


def slopes(table: pd.DataFrame) -> pd.DataFrame:
    """Fitted log–log slope of each MAE per system and model (columns system, model, ...)."""
    rows = []
    for (system, model), sub in table.groupby(["system", "model"], sort=False):
        for q in FITTED:
            slope, intercept = loglog_fit(sub["n_train"], sub[q])
            rows.append(
                {
                    "system": system,
                    "model": model,
                    "quantity": q,
                    "slope": slope,
                    "intercept_log10": intercept,
                    "n_min": int(sub["n_train"].min()),
                    "n_max": int(sub["n_train"].max()),
                    "n_points": len(sub),
                }
            )
    return pd.DataFrame(rows)


def with_slopes(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with columns ``f_mae_slope`` and ``e_mae_slope`` (dimensionless) of its
    system and model."""
    wide = slopes(table).pivot(index=["system", "model"], columns="quantity", values="slope")
    wide = wide.rename(columns={q: f"{q[:5]}_slope" for q in FITTED}).reset_index()
    return table.merge(wide, on=["system", "model"], how="left")
