"""Model files in sGDML's ``.npz`` layout, readable by sGDML 1.0.3's ``GDMLPredict``.

sGDML stores weights with the opposite sign convention (it solves for −α), so
``alphas_F = −α`` and ``R_d_desc_alpha = −J α``. Only plain arrays are written
(no pickled dictionaries); files are read with ``allow_pickle=False``.

Extra keys, which sGDML ignores: ``geometry_hashes_train`` and ``geometry_hashes_valid``
(uint64, :func:`geometry_hashes` of each training and validation geometry, so that a test
recognises them in any dataset) and ``checksum`` (:func:`array_checksum`, verified on load).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping

import numpy as np

from deltagdml.atomic_io import save_npz_atomic
from deltagdml.errors import ModelError
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.symmetry import tril_perms_lin as make_tril_perms_lin
from deltagdml.gdml.uncertainty import DEFAULT_MAX_SIZE
from deltagdml.npz_io import as_str, read_npz
from deltagdml.version import __version__

REQUIRED_KEYS = ("type", "z", "sig", "perms", "tril_perms_lin", "R_desc", "R_d_desc_alpha", "c")
HASH_KEYS = ("geometry_hashes_train", "geometry_hashes_valid")
CHECKSUM_KEY = "checksum"


def geometry_hashes(R: np.ndarray, z: np.ndarray) -> np.ndarray:
    """A uint64 content hash of each geometry R (M, N, 3) Å with atomic numbers ``z``: the
    first 8 bytes of the sha256 of ``z`` (int64) and R rounded to float32 (~1e-6 Å), so a
    geometry stored in single or in double precision hashes alike."""
    R32 = np.asarray(R, dtype="<f4").reshape(len(R), -1) + np.float32(0)  # −0.0 → 0.0
    head = hashlib.sha256(np.asarray(z, dtype="<i8").tobytes())
    out = np.empty(len(R32), dtype="<u8")
    for i, r in enumerate(R32):
        h = head.copy()
        h.update(r.tobytes())
        out[i] = int.from_bytes(h.digest()[:8], "little")
    return out


def training_hashes(
    R: np.ndarray, z: np.ndarray, idxs_train: np.ndarray, idxs_valid: np.ndarray
) -> dict[str, np.ndarray]:
    """The ``geometry_hashes_train`` and ``geometry_hashes_valid`` of a dataset's split."""
    return {
        "geometry_hashes_train": geometry_hashes(R[np.asarray(idxs_train, dtype=int)], z),
        "geometry_hashes_valid": geometry_hashes(R[np.asarray(idxs_valid, dtype=int)], z),
    }


def array_checksum(arrays: Mapping[str, np.ndarray], keys: Iterable[str] | None = None) -> str:
    """sha256 (hex) over the ``keys`` of ``arrays`` present (all but the checksum if None),
    in sorted order: each key's name, dtype, shape and C-order bytes."""
    chosen = set(arrays) - {CHECKSUM_KEY} if keys is None else set(keys) & set(arrays)
    h = hashlib.sha256()
    for key in sorted(chosen):
        a = np.asarray(arrays[key])
        h.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def verify_checksum(
    arrays: Mapping[str, np.ndarray], name: str, keys: Iterable[str] | None = None
) -> None:
    """Raise if ``arrays`` hold a checksum that their contents do not give (none: no check)."""
    if CHECKSUM_KEY not in arrays:
        return
    stored, computed = as_str(arrays[CHECKSUM_KEY]), array_checksum(arrays, keys)
    if stored != computed:
        raise ModelError(
            f"{name}: checksum mismatch (stored {stored[:12]}…, contents give "
            f"{computed[:12]}…): the file was altered or corrupted after it was written"
        )


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
    geometry_hashes_train: np.ndarray | None = None,
    geometry_hashes_valid: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of ``model`` in sGDML's model layout, with the content hashes of the
    training and validation geometries (if given; see :func:`training_hashes`) and the
    checksum of them all."""
    model.check_fitted()
    M = model.X_train_.shape[0]
    hashes = {}
    if geometry_hashes_train is not None:
        hashes = {
            "geometry_hashes_train": np.asarray(geometry_hashes_train, dtype="<u8"),
            "geometry_hashes_valid": np.asarray(
                [] if geometry_hashes_valid is None else geometry_hashes_valid, dtype="<u8"
            ),
        }
    arrays = {
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
        **hashes,
    }
    return arrays | {CHECKSUM_KEY: np.array(array_checksum(arrays))}


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


METADATA_KEYS = (
    "code_version",
    "dataset_name",
    "dataset_theory",
    "idxs_train",
    "idxs_valid",
    "md5_train",
    "md5_valid",
    "n_test",
    "r_unit",
    "e_unit",
)
#: The keys a model's checksum covers (those present).
MODEL_KEYS = (*REQUIRED_KEYS, *OPTIONAL_KEYS, *METADATA_KEYS, *HASH_KEYS)


def load_model(path: str | os.PathLike) -> GDMLModel:
    """Load a model written here or by sGDML (pickled entries are never read)."""
    path = str(path)
    arr = read_npz(
        path,
        REQUIRED_KEYS,
        "model",
        optional=(*OPTIONAL_KEYS, *METADATA_KEYS, *HASH_KEYS, CHECKSUM_KEY),
        error=ModelError,
    )
    return model_from_arrays(arr, path)


def _scalar(arr: dict[str, np.ndarray], key: str, default: float, path: str) -> float:
    """The finite number stored under ``key`` (``default`` if absent)."""
    if key not in arr:
        return default
    value = arr[key]
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise ModelError(f"{path}: '{key}' must be one number, got {value.dtype} {value.shape}")
    number = float(value.ravel()[0])
    if not np.isfinite(number):
        raise ModelError(f"{path}: '{key}' is {number}, not a finite number")
    return number


def _check_perms(perms: np.ndarray, lin: np.ndarray, z: np.ndarray, path: str) -> None:
    """Raise unless ``perms`` are permutations of the atoms that keep each element in place,
    and ``tril_perms_lin`` is what they give."""
    N = z.size
    if not np.array_equal(np.sort(perms, axis=1), np.broadcast_to(np.arange(N), perms.shape)):
        raise ModelError(f"{path}: 'perms' holds rows that are not permutations of 0…{N - 1}")
    moved = np.flatnonzero((z[perms] != z).any(axis=1))
    if moved.size:
        raise ModelError(
            f"{path}: permutation {moved[0]} of 'perms' maps atoms onto other elements "
            f"(z {z.tolist()})"
        )
    if not np.array_equal(lin, make_tril_perms_lin(perms)):
        raise ModelError(f"{path}: 'tril_perms_lin' does not match 'perms'")


def model_from_arrays(arr: dict[str, np.ndarray], path: str) -> GDMLModel:
    """A :class:`GDMLModel` from the arrays of sGDML's layout, checked: finite numbers,
    std and σ positive, consistent shapes, element-preserving permutations, and the
    checksum if the arrays hold one (``path`` names the source in errors)."""
    if str(arr["type"]) not in ("m", "b'm'"):
        raise ModelError(f"{path}: file type is {str(arr['type'])!r}, not a model ('m')")
    for key, value in arr.items():
        if key != "uncertainty_threshold" and np.issubdtype(value.dtype, np.number):
            if not np.isfinite(value).all():
                raise ModelError(f"{path}: '{key}' holds NaN or inf")
    z, perms = arr["z"], arr["perms"]
    if z.ndim != 1 or not np.issubdtype(z.dtype, np.number) or np.any(z != np.round(z)):
        raise ModelError(f"{path}: 'z' must be a list of atomic numbers, got {z.dtype} {z.shape}")
    if z.size < 2 or z.min() < 1 or z.max() > 118:
        raise ModelError(f"{path}: 'z' {z.tolist()} are not the atomic numbers of ≥ 2 atoms")
    z = z.astype(int)
    sigma = _scalar(arr, "sig", np.nan, path)
    std = _scalar(arr, "std", 1.0, path)
    for key, value in (("sig", sigma), ("std", std)):
        if value <= 0:
            raise ModelError(f"{path}: '{key}' is {value}; it must be positive")
    lam = _scalar(arr, "lam", 1e-10, path)
    if lam < 0:
        raise ModelError(f"{path}: 'lam' is {lam}; it must not be negative")
    if arr["R_desc"].ndim != 2 or perms.ndim != 2:
        raise ModelError(
            f"{path}: 'R_desc' {arr['R_desc'].shape} and 'perms' {perms.shape} must be 2-D"
        )
    X = arr["R_desc"].T.astype(float)
    V = -arr["R_d_desc_alpha"].astype(float)
    perms = perms.astype(int)
    N, (M, D), P = z.size, X.shape, perms.shape[0]
    alpha = -arr["alphas_F"].astype(float).ravel() if "alphas_F" in arr else None
    if (
        D != N * (N - 1) // 2
        or V.shape != X.shape
        or perms.shape[1] != N
        or P == 0
        or (alpha is not None and alpha.size != M * 3 * N)
    ):
        raise ModelError(
            f"{path}: inconsistent shapes: z {z.shape}, R_desc {arr['R_desc'].shape}, "
            f"R_d_desc_alpha {arr['R_d_desc_alpha'].shape}, perms {perms.shape}"
            + ("" if alpha is None else f", alphas_F {arr['alphas_F'].shape}")
        )
    lin = arr["tril_perms_lin"].astype(int).ravel()
    if lin.size != P * D:
        raise ModelError(f"{path}: tril_perms_lin has {lin.size} entries, expected {P * D}")
    _check_perms(perms, lin, z, path)
    tril_perms = np.ascontiguousarray(lin.reshape(D, P).T - np.arange(P)[:, None] * D)
    verify_checksum(arr, path, MODEL_KEYS)
    threshold = float(arr.get("uncertainty_threshold", np.nan))
    return GDMLModel.from_arrays(
        z=z,
        perms=perms,
        tril_perms=tril_perms,
        X_train=X,
        V=V,
        alpha=alpha,
        sigma=sigma,
        lam=lam,
        std=std,
        c=_scalar(arr, "c", np.nan, path),
        use_E=bool(arr.get("use_E", True)),
        solver=str(arr.get("solver_name", "analytic")),
        uncertainty=str(arr.get("uncertainty_method", "gp")),
        uncertainty_max_size=int(arr.get("uncertainty_max_size", DEFAULT_MAX_SIZE)),
        uncertainty_threshold=threshold if np.isfinite(threshold) else None,
    )
