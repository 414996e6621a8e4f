"""Error metrics for energies (kcal/mol) and forces (kcal/mol/Å)."""

from __future__ import annotations

import numpy as np


def mae(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean absolute error over all components."""
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(ref))))


def rmse(pred: np.ndarray, ref: np.ndarray) -> float:
    """Root-mean-square error over all components."""
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(ref)) ** 2)))


def error_summary(
    E_pred: np.ndarray | None,
    F_pred: np.ndarray,
    E_ref: np.ndarray | None,
    F_ref: np.ndarray,
) -> dict[str, float]:
    """Energy and force MAE/RMSE (energy entries NaN when energies are missing)."""
    out = {"f_mae": mae(F_pred, F_ref), "f_rmse": rmse(F_pred, F_ref)}
    if E_pred is not None and E_ref is not None:
        out.update(e_mae=mae(E_pred, E_ref), e_rmse=rmse(E_pred, E_ref))
    else:
        out.update(e_mae=float("nan"), e_rmse=float("nan"))
    return out
