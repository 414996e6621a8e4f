"""Steps of ``data.smk``: sampling, frame selection, labelling, Δ datasets and splits.

Every step validates its inputs before expensive work and writes its outputs atomically.
Units: kcal/mol, kcal/mol/Å, Å.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deltagdml.atomic_io import atomic_path
from deltagdml.data.calculators import calculator_label, set_single_thread
from deltagdml.data.delta import build_delta_datasets
from deltagdml.data.frame_selection import select_frames as choose_frames
from deltagdml.data.frames import write_frames
from deltagdml.data.ingest import ingest_dataset as ingest_labels
from deltagdml.data.labelling import chunk_indices, label_frames, load_labels, save_labels
from deltagdml.data.labelling import merge_labels as merge
from deltagdml.data.sampling import load_trajectory, sample_md, save_trajectory
from deltagdml.data.splits import make_splits, save_splits
from deltagdml.data.systems import model_parts
from deltagdml.dynamics.collective import CV2_COLUMNS, cv_pair
from deltagdml.gdml.dataset import load_dataset, save_dataset
from deltagdml.settings import TrajectoryAnalysisSettings
from deltagdml.workflow.config import (
    load_system,
    part_overrides,
    part_train_sizes,
    reference_settings,
    sampling_settings,
    system_entry,
    train_pool_size,
    training_settings,
)

log = logging.getLogger(__name__)
#: The sampler's energies and forces, carried from the replicas to the labelled frames.
SAMPLER_KEYS = ("sampler_E", "sampler_F")


def _progress(message: str) -> None:
    log.info(message)


def theory_label(config: dict) -> str:
    """Human-readable name of the reference method."""
    return calculator_label(reference_settings(config))


def sample_replica(
    *,
    config: dict,
    system: str,
    replica: int,
    trajectory: str,
    frames: str | None = None,
    base_dir: str = ".",
) -> None:
    """Langevin MD of one sampling replica (one temperature of ``sampling.temperatures_K``)
    with the sampling calculator (the reference method unless ``sampling.calculator``).

    ``frames`` (optional): the frames with the sampler's energies and forces, for ASE.
    """
    set_single_thread()
    complex_ = load_system(config, system, base_dir)
    s = sampling_settings(config, system)
    temperature = s.temperatures_K[replica]
    sampler, reference = calculator_label(s.calculator), theory_label(config)
    if sampler != reference:
        log.info("%s: sampling with %s; labels will come from %s", system, sampler, reference)
    t0 = time.perf_counter()
    traj = sample_md(
        complex_,
        s.calculator,
        temperature,
        s.timestep_fs,
        s.frames_per_replica,
        s.stride,
        seed=int(config.get("seed", 0)) + replica,
        friction_per_fs=s.friction_per_fs,
        restraint=s.restraint,
        progress=_progress,
        equilibration_steps=s.equilibration_steps,
    )
    traj |= {
        "replica": np.full(len(traj["R"]), replica),
        "temperature_K": np.full(len(traj["R"]), float(temperature)),
        "sampler": sampler,
    }
    save_trajectory(traj, trajectory)
    if frames:
        info = {"time_fs": traj["time_fs"], "temperature_K": traj["temperature_K"]}
        write_frames(frames, traj["z"], traj["R"], traj["sampler_E"], traj["sampler_F"], info)
    d = traj["com_distance"]
    log.info(
        "%s: replica %d (%g K), %d frames in %.0f s; COM distance %.2f–%.2f Å (mean %.2f Å)",
        system,
        replica,
        temperature,
        len(d),
        time.perf_counter() - t0,
        d.min(),
        d.max(),
        d.mean(),
    )


def select_frames(
    *,
    config: dict,
    cv: dict,
    system: str,
    replicas: list[str],
    trajectory: str,
    table: str,
    png: str,
    pdf: str,
    base_dir: str = ".",
) -> None:
    """Choose the frames to label among all ``replicas``' frames (``sampling.selection``)
    by the collective variables ``cv`` (:func:`~deltagdml.workflow.config.selection_cv_settings`).

    Writes the labelled frames with their replica, temperature, time and collective
    variables (``trajectory``, ``table``) and a figure of the CV coverage.
    """
    from deltagdml.analysis.plotting import plot_sampling_coverage

    complex_ = load_system(config, system, base_dir)
    s = sampling_settings(config, system)
    runs = [load_trajectory(p) for p in replicas]
    pool = {
        key: np.concatenate([r[key] for r in runs])
        for key in ("R", "com_distance", "time_fs", "replica", "temperature_K", *SAMPLER_KEYS)
        if all(key in r for r in runs)
    }
    analysis = TrajectoryAnalysisSettings(**cv)
    labels, cvs = cv_pair(analysis, complex_, complex_.atoms.positions)
    pool["cv"] = cvs(pool["R"])
    seed = int(config.get("seed", 0))
    idx = choose_frames(pool["cv"], s.n_frames, s.selection, seed, pool["replica"])
    sampler, reference = calculator_label(s.calculator), theory_label(config)
    out = {key: value[idx] for key, value in pool.items()}
    out |= {
        "z": runs[0]["z"],
        "candidate_index": idx,
        "cv_names": np.array(["R_CM_A", CV2_COLUMNS[analysis.cv2["kind"]]]),
        "sampler": sampler,
        "reference": reference,
    }
    save_trajectory(out, trajectory)
    frame_table = pd.DataFrame(
        {
            "frame": np.arange(len(idx)),
            "replica": out["replica"],
            "temperature_K": out["temperature_K"],
            "time_fs": out["time_fs"],
            **{name: out["cv"][:, k] for k, name in enumerate(out["cv_names"])},
        }
    )
    with atomic_path(table) as tmp:
        frame_table.to_csv(tmp, index=False, float_format="%.6g")
    title = f"{system}: sampled with {sampler}, labelled with {reference}"
    plot_sampling_coverage(pool["cv"], idx, pool["temperature_K"], labels, title, png, pdf)
    for k, label in enumerate(out["cv_names"]):
        log.info(
            "%s: %s candidates %.2f–%.2f Å, selected (%s) %.2f–%.2f Å, %d of %d frames",
            system,
            label,
            pool["cv"][:, k].min(),
            pool["cv"][:, k].max(),
            s.selection,
            out["cv"][:, k].min(),
            out["cv"][:, k].max(),
            len(idx),
            len(pool["cv"]),
        )


def label_chunk(
    *,
    config: dict,
    system: str,
    trajectory: str,
    chunk: int,
    n_chunks: int,
    labels: str,
    base_dir: str = ".",
) -> None:
    """Reference energies/forces of the complex and its fragments for one chunk of frames."""
    set_single_thread()
    complex_ = load_system(config, system, base_dir)
    traj = load_trajectory(trajectory)
    idx = chunk_indices(len(traj["R"]), n_chunks)[chunk]
    result = label_frames(
        complex_, traj["R"][idx], reference_settings(config), progress=_progress, frame_indices=idx
    )
    save_labels(result, labels)


def merge_labels(*, chunks: list[str], labels: str, frames: str | None = None) -> None:
    """Concatenate label ``chunks`` in frame order; optionally also write the labelled
    complex frames for ASE and viewers (reference energies and forces in eV, eV/Å)."""
    merged = merge(chunks)
    save_labels(merged, labels)
    if frames:
        info = {"frame_index": merged["frame_index"]}
        write_frames(frames, merged["z"], merged["R"], merged["E"], merged["F"], info)


def ingest_dataset(*, config: dict, system: str, labels: str, base_dir: str = ".") -> None:
    """Labels from a user's dataset (fragment labels from files or the reference method)."""
    set_single_thread()
    entry = system_entry(config, system)
    complex_ = load_system(config, system, base_dir)
    fragment_files = entry.get("fragment_labels")
    result = ingest_labels(
        Path(base_dir) / entry["dataset"],
        complex_,
        fragment_files=[Path(base_dir) / f for f in fragment_files] if fragment_files else None,
        calculator=None if fragment_files else reference_settings(config),
        progress=_progress,
    )
    save_labels(result, labels)


def delta_dataset(
    *, config: dict, system: str, labels: str, part: str, dataset: str, base_dir: str = "."
) -> None:
    """Write ``dataset``, one of the Δ datasets: full, fragment_k, nonint or binding."""
    complex_ = load_system(config, system, base_dir)
    datasets = build_delta_datasets(complex_, load_labels(labels, complex_), theory_label(config))
    if part not in datasets:
        raise KeyError(f"system '{system}' has no dataset '{part}'; it has {sorted(datasets)}")
    save_dataset(datasets[part], dataset)


def split(*, config: dict, system: str, full: str, splits: str) -> None:
    """Energy-stratified train/valid/test indices shared by every model of a system."""
    ds = load_dataset(full)
    t = training_settings(config, system)
    sizes = None
    if part_overrides(config, system):
        sizes = part_train_sizes(config, system, model_parts(load_system(config, system)))
    pool = train_pool_size(config, system)
    seed = int(config.get("seed", 0))
    result = make_splits(ds.E, pool, t.n_valid, t.n_test, seed, part_sizes=sizes)
    save_splits(result, splits, n_geometries=ds.n_geometries)
