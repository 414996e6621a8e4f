"""One file for a Δ-sGDML force field, and one loader for both kinds of model file.

A Δ model file is an ``.npz`` whose entries ``<part>/<key>`` hold each learned part
(``fragment_k``, ``binding``) in sGDML's model layout, beside ``type`` (``"d"``), ``z`` and
``manifest``, a JSON text with the fragments' atom indices, the constant energies of
single-atom fragments, units, level of theory, σ, training size and md5 of the training
and validation data of every part, and the code version. ``geometry_hashes_train`` and
``geometry_hashes_valid`` hold the content hashes of the complex geometries that trained and
validated the model (:func:`~deltagdml.gdml.model_io.geometry_hashes`), and ``checksum``
the sha256 of all other entries (each part also holds its own, see
:mod:`~deltagdml.gdml.model_io`), verified on load with the manifest's agreement with the
parts. :func:`extract_part` writes one part as a plain sGDML model file. Nothing is ever
unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
from ase.data import chemical_symbols

from deltagdml.atomic_io import save_npz_atomic
from deltagdml.errors import ModelError
from deltagdml.gdml.composite import DeltaModel, FragmentTerm
from deltagdml.gdml.dataset import Dataset
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import (
    CHECKSUM_KEY,
    HASH_KEYS,
    REQUIRED_KEYS,
    array_checksum,
    geometry_hashes,
    model_arrays,
    model_from_arrays,
    verify_checksum,
)
from deltagdml.npz_io import as_str, read_npz
from deltagdml.version import __version__

FORMAT = "deltagdml-delta/1"
UNITS = {"energy": "kcal/mol", "force": "kcal/mol/Ang", "length": "Ang"}
#: a part's manifest entries computed from its model (the rest come from ``part_info``)
PART_SUMMARY_KEYS = ("sigma", "n_train", "n_perms", "uncertainty")
#: a part's ``part_info`` entries stored as arrays of the part
PART_ARRAY_KEYS = ("md5_train", "md5_valid", *HASH_KEYS)


@dataclass
class TrainingRecord:
    """Which geometries trained and validated a model: by index into a dataset (by md5),
    and by content (:func:`~deltagdml.gdml.model_io.geometry_hashes`; None if the file
    holds no hashes, as sGDML's own and older files)."""

    md5: str = ""
    idxs_train: list[int] = field(default_factory=list)
    idxs_valid: list[int] = field(default_factory=list)
    geometry_hashes_train: np.ndarray | None = field(default=None, compare=False)
    geometry_hashes_valid: np.ndarray | None = field(default=None, compare=False)

    @property
    def by_content(self) -> bool:
        """Whether training geometries are recognised by content in any dataset."""
        return self.geometry_hashes_train is not None

    def used_indices(self, dataset_md5: str) -> np.ndarray:
        """Indices to leave out of a test on the dataset with ``dataset_md5``."""
        if not self.md5 or self.md5 != dataset_md5:
            return np.array([], dtype=int)
        return np.unique(np.array([*self.idxs_train, *self.idxs_valid], dtype=int))

    def used_mask(self, ds: Dataset) -> np.ndarray:
        """Which geometries of ``ds`` trained or validated the model: by content if the
        model records hashes, else by index if ``ds`` is the training dataset (same md5)."""
        if self.by_content:
            known = [self.geometry_hashes_train, self.geometry_hashes_valid]
            known = np.concatenate([h for h in known if h is not None])
            return np.isin(geometry_hashes(ds.R, ds.z), known)
        mask = np.zeros(ds.n_geometries, dtype=bool)
        used = self.used_indices(ds.md5())
        mask[used[used < ds.n_geometries]] = True
        return mask


def delta_manifest(
    model: DeltaModel,
    part_info: dict[str, dict],
    record: TrainingRecord,
    theory: str,
) -> dict:
    """The manifest of a Δ model file (see the module docstring)."""
    fragments = []
    for k, f in enumerate(model.fragments):
        fragments.append(
            {
                "atoms": f.atoms.tolist(),
                "part": None if f.model is None else f"fragment_{k}",
                "constant_energy_kcal_mol": float(f.constant_energy),
                "elements": [chemical_symbols[z] for z in model.z_[f.atoms]],
            }
        )
    parts = {}
    for part, gdml in model.parts().items():
        parts[part] = {
            **{k: v for k, v in part_info.get(part, {}).items() if k not in HASH_KEYS},
            "sigma": gdml.sigma,
            "n_train": int(gdml.X_train_.shape[0]),
            "n_perms": int(len(gdml.perms_)),
            "uncertainty": gdml.uncertainty_summary(),
        }
    return {
        "format": FORMAT,
        "code_version": f"deltagdml {__version__}",
        "units": UNITS,
        "theory": theory,
        "elements": [chemical_symbols[z] for z in model.z_],
        "fragments": fragments,
        "parts": parts,
        "training_data": {
            "md5": record.md5,
            "idxs_train": list(record.idxs_train),
            "idxs_valid": list(record.idxs_valid),
        },
    }


def save_delta_model(
    model: DeltaModel,
    path: str | os.PathLike,
    *,
    part_info: dict[str, dict] | None = None,
    record: TrainingRecord | None = None,
    theory: str = "",
) -> None:
    """Write ``model`` atomically as one Δ model file.

    ``part_info`` maps a part to extra manifest entries (e.g. ``md5_train``, ``md5_valid``)
    and to the content hashes of its training and validation geometries
    (``geometry_hashes_train``, ``geometry_hashes_valid``; written as arrays of the part);
    ``record`` says which geometries of the complex dataset trained the model. Left out,
    all three come from the file ``model`` was loaded from, so a loaded model saves to
    the same bytes.
    """
    loaded = getattr(model, "manifest_", {})
    part_info = getattr(model, "part_info_", {}) if part_info is None else part_info
    record = getattr(model, "training_", TrainingRecord()) if record is None else record
    theory = theory or loaded.get("theory", "")
    manifest = delta_manifest(model, part_info, record, theory)
    arrays: dict[str, np.ndarray] = {
        "type": np.array("d"),
        "z": model.z_,
        "manifest": np.array(json.dumps(manifest, sort_keys=True)),
    }
    for part, gdml in model.parts().items():
        info = part_info.get(part, {})
        meta = {key: info[key] for key in PART_ARRAY_KEYS if key in info}
        arrays |= {
            f"{part}/{key}": value
            for key, value in model_arrays(
                gdml,
                idxs_train=np.array(record.idxs_train, dtype=int) if record.idxs_train else None,
                idxs_valid=np.array(record.idxs_valid, dtype=int),
                dataset_theory=theory,
                **meta,
            ).items()
        }
    if record.by_content:
        arrays["geometry_hashes_train"] = np.asarray(record.geometry_hashes_train, dtype="<u8")
        arrays["geometry_hashes_valid"] = np.asarray(
            [] if record.geometry_hashes_valid is None else record.geometry_hashes_valid,
            dtype="<u8",
        )
    arrays[CHECKSUM_KEY] = np.array(array_checksum(arrays))
    save_npz_atomic(path, **arrays)


def _part_value(value: np.ndarray) -> str | np.ndarray:
    """A part's array as ``part_info`` holds it: a string for a 0-d string array."""
    return as_str(value) if value.dtype.kind == "U" and value.ndim == 0 else value


def _part_arrays(arrays: dict[str, np.ndarray], part: str, path: str) -> dict[str, np.ndarray]:
    prefix = f"{part}/"
    out = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
    missing = sorted(set(REQUIRED_KEYS) - set(out))
    if missing:
        raise ModelError(f"{path}: part '{part}' lacks {missing}; the file is incomplete")
    return out


def read_manifest(arrays: dict[str, np.ndarray], path: str) -> dict:
    """The checked manifest of a Δ model file's arrays."""
    try:
        manifest = json.loads(as_str(arrays["manifest"]))
    except (json.JSONDecodeError, ValueError) as exc:
        raise ModelError(f"{path}: the manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{path}: not a Δ model file of format {FORMAT!r}")
    for key in ("fragments", "parts", "units", "training_data"):
        if key not in manifest:
            raise ModelError(f"{path}: the manifest lacks '{key}'")
    return manifest


def _check_manifest(manifest: dict, z: np.ndarray, path: str) -> None:
    """Raise unless the manifest's units are this code's and its elements and fragments
    agree with the complex's ``z``."""
    if manifest["units"] != UNITS:
        raise ModelError(f"{path}: the manifest's units {manifest['units']} are not {UNITS}")
    symbols = [chemical_symbols[k] for k in z]
    if manifest.get("elements", symbols) != symbols:
        raise ModelError(
            f"{path}: the manifest's elements {manifest['elements']} are not those of z {symbols}"
        )
    atoms = [np.asarray(entry["atoms"], dtype=int).ravel() for entry in manifest["fragments"]]
    covered = np.sort(np.concatenate(atoms)) if atoms else np.array([], dtype=int)
    if not np.array_equal(covered, np.arange(z.size)):
        raise ModelError(
            f"{path}: the fragment atom lists {[a.tolist() for a in atoms]} do not cover "
            f"atoms 0…{z.size - 1} exactly once"
        )
    for k, (entry, idx) in enumerate(zip(manifest["fragments"], atoms, strict=True)):
        expected = [symbols[i] for i in idx]
        if entry.get("elements", expected) != expected:
            raise ModelError(
                f"{path}: fragment {k} lists elements {entry['elements']}, but its atoms "
                f"{idx.tolist()} are {expected}"
            )


def _part_model(arrays: dict[str, np.ndarray], part: str, z: np.ndarray, path: str) -> GDMLModel:
    """The checked model of ``part``, whose atoms in the complex have atomic numbers ``z``."""
    gdml = model_from_arrays(_part_arrays(arrays, part, path), f"{path} (part '{part}')")
    if not np.array_equal(gdml.z_, z):
        raise ModelError(
            f"{path}: part '{part}' is a model of z {gdml.z_.tolist()}, but its atoms in the "
            f"complex are z {z.tolist()}"
        )
    return gdml


def load_delta_model(path: str | os.PathLike) -> DeltaModel:
    """Load a Δ model file, checked: the manifest against the parts, each part (see
    :func:`~deltagdml.gdml.model_io.model_from_arrays`) and the checksum if the file holds
    one. Pickled entries are refused, never read."""
    path = str(path)
    arrays = read_npz(path, ("type", "z", "manifest"), "Δ model", error=ModelError)
    if as_str(arrays["type"]) != "d":
        raise ModelError(f"{path}: file type is {as_str(arrays['type'])!r}, not a Δ model ('d')")
    manifest = read_manifest(arrays, path)
    z = arrays["z"]
    if z.ndim != 1 or not np.issubdtype(z.dtype, np.integer) or z.size < 2:
        raise ModelError(f"{path}: 'z' must be the atomic numbers of ≥ 2 atoms, got {z!r}")
    if z.min() < 1 or z.max() >= len(chemical_symbols):
        raise ModelError(f"{path}: 'z' {z.tolist()} holds values that are no atomic numbers")
    z = z.astype(int)
    terms = []
    try:
        _check_manifest(manifest, z, path)
        for entry in manifest["fragments"]:
            atoms = np.asarray(entry["atoms"], dtype=int)
            part = entry["part"]
            gdml = None if part is None else _part_model(arrays, part, z[atoms], path)
            terms.append(FragmentTerm(atoms, gdml, float(entry["constant_energy_kcal_mol"])))
        model = DeltaModel(z, terms, _part_model(arrays, "binding", z, path))
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: malformed Δ model manifest ({exc!r})") from exc
    verify_checksum(arrays, path)
    model.manifest_ = manifest
    model.part_info_ = {
        part: {k: v for k, v in info.items() if k not in PART_SUMMARY_KEYS}
        | {
            k: _part_value(arrays[f"{part}/{k}"])
            for k in PART_ARRAY_KEYS
            if f"{part}/{k}" in arrays
        }
        for part, info in manifest["parts"].items()
    }
    model.training_ = TrainingRecord(
        **manifest["training_data"], **{k: arrays[k] for k in HASH_KEYS if k in arrays}
    )
    return model


def extract_part(path: str | os.PathLike, part: str, out_path: str | os.PathLike) -> None:
    """Write one part of a Δ model file as a plain sGDML model file."""
    path = str(path)
    if os.path.abspath(out_path) == os.path.abspath(path):
        raise ModelError(f"{out_path}: the output would overwrite the Δ model file")
    arrays = read_npz(path, ("type", "manifest"), "Δ model", error=ModelError)
    parts = read_manifest(arrays, path)["parts"]
    if part not in parts:
        raise ModelError(f"{path}: no part '{part}'; the file holds {sorted(parts)}")
    save_npz_atomic(out_path, **_part_arrays(arrays, part, path))


def load_model(path: str | os.PathLike) -> GDMLModel | DeltaModel:
    """A full sGDML model or a Δ model, whichever ``path`` holds; both ``predict(R)``.

    The returned model's ``training_`` (:class:`TrainingRecord`) says which geometries of
    which dataset trained and validated it.
    """
    from deltagdml.gdml.model_io import load_model as load_gdml

    path = str(path)
    kind = as_str(read_npz(path, ("type",), "model", optional=(), error=ModelError)["type"])
    if kind == "d":
        return load_delta_model(path)
    model = load_gdml(path)
    meta = read_npz(
        path,
        (),
        "model",
        optional=("md5_train", "idxs_train", "idxs_valid", *HASH_KEYS),
        error=ModelError,
    )
    model.training_ = TrainingRecord(
        md5=as_str(meta["md5_train"]) if "md5_train" in meta else "",
        idxs_train=meta.get("idxs_train", np.array([], dtype=int)).astype(int).tolist(),
        idxs_valid=meta.get("idxs_valid", np.array([], dtype=int)).astype(int).tolist(),
        **{k: meta[k] for k in HASH_KEYS if k in meta},
    )
    return model
