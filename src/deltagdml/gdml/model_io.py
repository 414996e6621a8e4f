"""Model files in sGDML's ``.npz`` layout, readable by sGDML 1.0.3's ``GDMLPredict``.

sGDML stores weights with the opposite sign convention (it solves for −α), so
``alphas_F = −α`` and ``R_d_desc_alpha = −J α``. Only plain arrays are written
(no pickled dictionaries); files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import os

import numpy as np

from deltagdml.atomic_io import save_npz_atomic
from deltagdml.errors import ModelError
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.symmetry import tril_perms_lin as make_tril_perms_lin
from deltagdml.gdml.uncertainty import DEFAULT_MAX_SIZE
from deltagdml.npz_io import read_npz
from deltagdml.version import __version__

REQUIRED_KEYS = ("type", "z", "sig", "perms", "tril_perms_lin", "R_desc", "R_d_desc_alpha", "c")


def model_arrays(
    model: GDMLModel,
    *,
    idxs_train: np.ndarray | None = None,
    idxs_valid: np.ndarray | None = None,
    md5_train: str = "",
    md5_valid: str = "",
    dataset_name: str = "",
    dataset_theory: str = "",
    r_unit: str = "Ang",
    e_unit: str = "kcal/mol",
) -> dict[str, np.ndarray]:
    """The arrays of ``model`` in sGDML's model layout."""
    model.check_fitted()
    M = model.X_train_.shape[0]
    return {
        "type": np.array("m"),
        "code_version": np.array(f"deltagdml {__version__}"),
        "dataset_name": np.array(dataset_name),
        "dataset_theory": np.array(dataset_theory),
        "solver_name": np.array(getattr(model, "solver_", "analytic")),
        "z": model.z_,
        "sig": np.array(float(model.sigma)),
        "lam": np.array(float(model.lam)),
        "perms": model.perms_,
        "tril_perms_lin": make_tril_perms_lin(model.perms_),
        "R_desc": model.X_train_.T,
        "R_d_desc_alpha": -model.V_,
        # a loaded sGDML model may come without them
        **({} if model.alpha_ is None else {"alphas_F": -model.alpha_}),
        "c": np.array(model.c_),
        "std": np.array(model.std_),
        "use_E": np.array(model.use_E_),
        "idxs_train": np.asarray(idxs_train if idxs_train is not None else np.arange(M)),
        "idxs_valid": np.asarray(idxs_valid if idxs_valid is not None else [], dtype=int),
        "md5_train": np.array(md5_train),
        "md5_valid": np.array(md5_valid),
        "n_test": np.array(0),
        "r_unit": np.array(r_unit),
        "e_unit": np.array(e_unit),
        "uncertainty_method": np.array(model.uncertainty),
        "uncertainty_max_size": np.array(model.uncertainty_max_size),
        # NaN: not calibrated
        "uncertainty_threshold": np.array(
            np.nan if model.uncertainty_threshold_ is None else model.uncertainty_threshold_
        ),
    }


def save_model(model: GDMLModel, path: str | os.PathLike, **metadata) -> None:
    """Write ``model`` atomically in sGDML's model layout (``metadata``: see
    :func:`model_arrays`)."""
    save_npz_atomic(path, **model_arrays(model, **metadata))


OPTIONAL_KEYS = (
    "std",
    "lam",
    "use_E",
    "alphas_F",
    "solver_name",
    "uncertainty_method",
    "uncertainty_max_size",
    "uncertainty_threshold",
)


def load_model(path: str | os.PathLike) -> GDMLModel:
    """Load a model written here or by sGDML (pickled entries are never read)."""
    path = str(path)
    arr = read_npz(path, REQUIRED_KEYS, "model", optional=OPTIONAL_KEYS, error=ModelError)
    return model_from_arrays(arr, path)


def model_from_arrays(arr: dict[str, np.ndarray], path: str) -> GDMLModel:
    """A :class:`GDMLModel` from the arrays of sGDML's layout, checked (``path`` names the
    source in errors)."""
    if str(arr["type"]) not in ("m", "b'm'"):
        raise ModelError(f"{path}: file type is {str(arr['type'])!r}, not a model ('m')")
    z = arr["z"].astype(int)
    X = arr["R_desc"].T.astype(float)
    V = -arr["R_d_desc_alpha"].astype(float)
    perms = arr["perms"].astype(int)
    N, D, P = z.size, X.shape[1], perms.shape[0]
    if D != N * (N - 1) // 2 or V.shape != X.shape or perms.shape[1] != N:
        raise ModelError(
            f"{path}: inconsistent shapes: z {z.shape}, R_desc {arr['R_desc'].shape}, "
            f"R_d_desc_alpha {arr['R_d_desc_alpha'].shape}, perms {perms.shape}"
        )
    lin = arr["tril_perms_lin"].astype(int)
    if lin.size != P * D:
        raise ModelError(f"{path}: tril_perms_lin has {lin.size} entries, expected {P * D}")
    tril_perms = np.ascontiguousarray(lin.reshape(D, P).T - np.arange(P)[:, None] * D)
    for key in ("sig", "c", "R_desc", "R_d_desc_alpha"):
        if not np.isfinite(arr[key]).all():
            raise ModelError(f"{path}: '{key}' holds NaN or inf")
    threshold = float(arr.get("uncertainty_threshold", np.nan))
    return GDMLModel.from_arrays(
        z=z,
        perms=perms,
        tril_perms=tril_perms,
        X_train=X,
        V=V,
        alpha=-arr["alphas_F"].astype(float).ravel() if "alphas_F" in arr else None,
        sigma=float(arr["sig"]),
        lam=float(arr.get("lam", 1e-10)),
        std=float(arr.get("std", 1.0)),
        c=float(arr["c"]),
        use_E=bool(arr.get("use_E", True)),
        solver=str(arr.get("solver_name", "analytic")),
        uncertainty=str(arr.get("uncertainty_method", "gp")),
        uncertainty_max_size=int(arr.get("uncertainty_max_size", DEFAULT_MAX_SIZE)),
        uncertainty_threshold=threshold if np.isfinite(threshold) else None,
    )
