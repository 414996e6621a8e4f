"""Steps of ``train.smk``: one sGDML model per part, and the Δ model file.

Units: kcal/mol, kcal/mol/Å, Å.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deltagdml.atomic_io import atomic_path
from deltagdml.data.splits import load_splits, train_indices, union_train_indices
from deltagdml.gdml.composite import DeltaModel
from deltagdml.gdml.dataset import load_dataset
from deltagdml.gdml.delta_io import TrainingRecord, save_delta_model
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import HASH_KEYS, save_model, training_hashes
from deltagdml.gdml.selection import select_sigma_configured
from deltagdml.gdml.uncertainty import UNITS
from deltagdml.npz_io import as_str, read_npz
from deltagdml.settings import UncertaintySettings
from deltagdml.workflow.config import load_system, training_settings, uncertainty_settings
from deltagdml.workflow.steps.data import theory_label

log = logging.getLogger(__name__)


def read_symmetries(setting: str, base_dir: str = ".") -> str | np.ndarray:
    """A ``training.symmetries`` value: 'auto', 'none', or the permutations of its .npy file."""
    if setting in ("auto", "none"):
        return setting
    return np.load(Path(base_dir) / setting, allow_pickle=False)


def train_model(
    *,
    config: dict,
    system: str,
    part: str,
    dataset: str,
    splits: str,
    model: str,
    scores: str,
    timing: str,
    base_dir: str = ".",
    sigmas: Sequence[float] | None = None,
) -> None:
    """Train the sGDML model of ``part`` with σ chosen on the validation split (over the
    configured grid, or over ``sigmas``).

    Validation errors per σ go to ``scores`` (reproducible); wall times per σ to
    ``timing`` (they vary from run to run, so they are kept apart).
    """
    ds = load_dataset(dataset)
    split = load_splits(splits, ds.n_geometries)
    t = training_settings(config, system, part)
    if sigmas is not None:
        t = dataclasses.replace(t, sigmas=tuple(sigmas))
    idxs_train = train_indices(split, part)
    tr, va = ds.subset(idxs_train), ds.subset(split["valid"])
    # Iterative-solver state, resumed if this job is restarted; removed once trained.
    checkpoints = Path(model).parent / f".{part}_cg_checkpoints"
    log.info(
        "%s/%s: %d atoms, %d training and %d validation geometries",
        system,
        part,
        ds.n_atoms,
        tr.n_geometries,
        va.n_geometries,
    )
    perms = read_symmetries(t.symmetries, base_dir)
    fitted, sigma_scores = select_sigma_configured(tr, va, t, perms, str(checkpoints))
    calibrate(fitted, va.R, uncertainty_settings(config), f"{system}/{part}")
    table = pd.DataFrame([s.as_dict() for s in sigma_scores])
    chosen = (table["sigma"] == fitted.sigma) & ~table["stage"].str.startswith("subset_")
    table.insert(0, "selected", chosen)
    table.insert(0, "n_perms", len(fitted.perms_))
    table.insert(0, "part", part)
    table.insert(0, "system", system)
    with atomic_path(scores) as tmp:
        table.drop(columns="train_s").to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(timing) as tmp:
        table[["system", "part", "sigma", "selected", "train_s"]].to_csv(
            tmp, index=False, float_format="%.3f"
        )
    save_model(
        fitted,
        model,
        idxs_train=idxs_train,
        idxs_valid=split["valid"],
        md5_train=ds.md5(),
        md5_valid=ds.md5(),
        dataset_name=ds.name,
        dataset_theory=ds.theory,
        **training_hashes(ds.R, ds.z, idxs_train, split["valid"]),
    )
    shutil.rmtree(checkpoints, ignore_errors=True)


def calibrate(model: GDMLModel, R_valid: np.ndarray, u: UncertaintySettings, name: str) -> None:
    """Give ``model`` the uncertainty estimator of ``u`` and its threshold on ``R_valid``."""
    threshold = model.set_uncertainty(u.method, u.max_size).calibrate_uncertainty(
        R_valid, u.quantile, u.factor
    )
    log.info(
        "%s: uncertainty threshold %.4g %s (%g × the %g quantile over %d validation geometries)",
        name,
        threshold,
        UNITS[u.method],
        u.factor,
        u.quantile,
        len(R_valid),
    )


def delta_model(
    *,
    config: dict,
    system: str,
    models: dict[str, str],
    binding_dataset: str,
    full_dataset: str,
    splits: str,
    output: str,
    base_dir: str = ".",
) -> None:
    """Write the Δ model of a system as one file (:mod:`deltagdml.gdml.delta_io`) from its
    part ``models``."""
    complex_ = load_system(config, system, base_dir)
    delta = DeltaModel.from_files(complex_.z, complex_.fragments, models, binding_dataset)
    ds = load_dataset(full_dataset)
    idx = load_splits(splits, ds.n_geometries)
    part_info = {}
    for part in delta.parts():
        meta = read_npz(models[part], (), "model", optional=("md5_train", "md5_valid", *HASH_KEYS))
        part_info[part] = {k: v if k in HASH_KEYS else as_str(v) for k, v in meta.items()}
    idxs_train = union_train_indices(idx, delta.parts())
    record = TrainingRecord(
        md5=ds.md5(),
        idxs_train=idxs_train.tolist(),
        idxs_valid=idx["valid"].tolist(),
        **training_hashes(ds.R, ds.z, idxs_train, idx["valid"]),
    )
    save_delta_model(delta, output, part_info=part_info, record=record, theory=theory_label(config))
    log.info("%s: Δ model (%s) written to %s", system, ", ".join(delta.parts()), output)
