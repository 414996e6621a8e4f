"""Error metrics for energies (kcal/mol) and forces (kcal/mol/Å)."""

from __future__ import annotations

import numpy as np


def mae(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean absolute error over all components."""
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(ref))))


def rmse(pred: np.ndarray, ref: np.ndarray) -> float:
    """Root-mean-square error over all components."""
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(ref)) ** 2)))


def r2(pred: np.ndarray, ref: np.ndarray) -> float:
    """Explained variance R² = 1 − Σ(ref − pred)² / Σ(ref − mean ref)², both sums over all
    components (every geometry, atom and Cartesian axis) and the mean over them all: 1 for
    exact predictions, 0 for predicting the mean, negative for worse (NaN if ref is
    constant). Dimensionless."""
    pred, ref = np.asarray(pred, dtype=float), np.asarray(ref, dtype=float)
    total = float(np.sum((ref - ref.mean()) ** 2))
    return 1.0 - float(np.sum((ref - pred) ** 2)) / total if total > 0 else float("nan")


#: Unit of each test error; tables name their columns ``<quantity>_<unit>``.
ERROR_UNITS = {
    "e_mae": "kcal_mol",
    "e_rmse": "kcal_mol",
    "f_mae": "kcal_mol_A",
    "f_rmse": "kcal_mol_A",
}
#: Column name of each test error, e.g. ``f_mae`` -> ``f_mae_kcal_mol_A``.
ERROR_COLUMN = {q: f"{q}_{unit}" for q, unit in ERROR_UNITS.items()}
E_MAE, E_RMSE, F_MAE, F_RMSE = ERROR_COLUMN.values()
#: Column names of the test errors, energies in kcal/mol, forces in kcal/mol/Å.
ERROR_COLUMNS = tuple(ERROR_COLUMN.values())
#: Column of the forces' explained variance (:func:`r2`, dimensionless).
F_R2 = "f_r2"


def error_summary(
    E_pred: np.ndarray | None,
    F_pred: np.ndarray,
    E_ref: np.ndarray | None,
    F_ref: np.ndarray,
) -> dict[str, float]:
    """Energy and force MAE/RMSE under :data:`ERROR_COLUMNS` (energies NaN if missing)."""
    out = {F_MAE: mae(F_pred, F_ref), F_RMSE: rmse(F_pred, F_ref)}
    energies = E_pred is not None and E_ref is not None
    out[E_MAE] = mae(E_pred, E_ref) if energies else float("nan")
    out[E_RMSE] = rmse(E_pred, E_ref) if energies else float("nan")
    return out
