"""Steps of ``analysis.smk``: the paper's Figs. 1, 2, 3, 5 and the learning curves.

Units: kcal/mol, kcal/mol/Å, Å.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from deltagdml.analysis.binding_stats import binding_values, statistics_table
from deltagdml.analysis.coulomb_map import block_table
from deltagdml.analysis.descriptor_variance import (
    DESCRIPTORS,
    coulomb_matrix,
    descriptor_variance,
    random_frame_pairs,
    select_entries,
    summary_rows,
)
from deltagdml.analysis.figures import (
    plot_binding_stats,
    plot_coulomb_matrix,
    plot_descriptor_variance,
    plot_force_decomposition,
    plot_learning_curves,
)
from deltagdml.analysis.force_decomposition import atom_table, decompose
from deltagdml.analysis.learning_curves import learning_curve, slopes, with_slopes
from deltagdml.atomic_io import atomic_path
from deltagdml.data.sampling import load_trajectory
from deltagdml.data.splits import load_splits
from deltagdml.errors import DatasetError
from deltagdml.gdml.composite import read_constant_energies
from deltagdml.gdml.dataset import load_dataset
from deltagdml.gdml.model_io import load_model
from deltagdml.workflow.config import (
    analysis_settings,
    learning_curve_sizes,
    load_system,
    training_settings,
)
from deltagdml.workflow.steps.train import read_symmetries

log = logging.getLogger(__name__)


def _write_csv(table: pd.DataFrame, path: str) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def _fragment_names(system) -> list[str]:
    return [
        system.atoms[f].get_chemical_formula() + {0: "", 1: "⁺", -1: "⁻"}.get(q, f"({q:+d})")
        for f, q in zip(system.fragments, system.fragment_charges, strict=True)
    ]


def binding_stats(
    *,
    systems: list[str],
    names: dict[str, str],
    binding: list[str],
    csv: str,
    png: str,
    pdf: str,
) -> None:
    """Fig. 5: binding energies and forces of every system (``binding`` datasets, in the
    order of ``systems``; ``names`` in the figure): the statistics CSV and the box plots."""
    values = {s: binding_values(load_dataset(p)) for s, p in zip(systems, binding, strict=True)}
    _write_csv(statistics_table(values), csv)
    plot_binding_stats(values, names, png, pdf)


def coulomb_matrix_figure(
    *,
    config: dict,
    system: str,
    label: str,
    full: str,
    csv: str,
    png: str,
    pdf: str,
    frame: int = 0,
    base_dir: str = ".",
) -> None:
    """Fig. 2 of one system (named ``label`` in the figure): Coulomb matrix of geometry
    ``frame`` of the full dataset."""
    complex_ = load_system(config, system, base_dir)
    ds = load_dataset(full)
    if not np.array_equal(ds.z, complex_.z):
        raise DatasetError(f"{full}: the dataset holds other atoms than system '{system}'")
    C = coulomb_matrix(ds.R[frame], ds.z)
    table = block_table(C, complex_.fragments)
    table.insert(0, "frame", frame)
    table.insert(0, "system", system)
    _write_csv(table, csv)
    names = _fragment_names(complex_)
    plot_coulomb_matrix(label, C, complex_.fragments, names, table, png, pdf)


def _frames(full: str, trajectory: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Geometries R (Å), atomic numbers and times (ps; None unless the frames are one
    sampled trajectory in time order, as opposed to a user dataset or several replicas)."""
    if trajectory is None:
        ds = load_dataset(full)
        return ds.R, ds.z, None
    traj = load_trajectory(trajectory)
    time_ps = traj["time_fs"] / 1000.0
    if np.any(np.diff(time_ps) <= 0):
        return traj["R"], traj["z"], None
    return traj["R"], traj["z"], time_ps


def descriptor_variance_figure(
    *,
    config: dict,
    system: str,
    label: str,
    full: str,
    trajectory: str | None,
    csv: str,
    png: str,
    pdf: str,
    base_dir: str = ".",
) -> None:
    """Fig. 3 of one system (named ``label`` in the figure) for both descriptors: the CSV
    and the figure.

    Frames come from the sampled ``trajectory`` if given, else from the ``full`` dataset.
    """
    complex_ = load_system(config, system, base_dir)
    settings = analysis_settings(config)
    R, z, time_ps = _frames(full, trajectory)
    if not np.array_equal(z, complex_.z):
        raise DatasetError(f"system '{system}': the frames hold other atoms than the system")
    fragments = complex_.fragments
    M = R.shape[0]
    frames = tuple(settings.descriptor_frames or (0, M - 1))
    overrides = (settings.descriptor_entries or {}).get(system)
    entries = select_entries(R, z, fragments, overrides)
    pairs = random_frame_pairs(M, int(settings.descriptor_frame_pairs), int(config.get("seed", 0)))
    results = [
        descriptor_variance(matrices(R, z), name, fragments, entries, frames, pairs)
        for name, matrices in DESCRIPTORS.items()
    ]
    table = summary_rows(results, fragments, entries, z, frames, len(pairs))
    table.insert(0, "n_frames", M)
    table.insert(0, "system", system)
    _write_csv(table, csv)
    plot_descriptor_variance(
        label, results, table, entries, z, fragments, time_ps, frames, png, pdf
    )


def force_decomposition_figure(
    *,
    config: dict,
    system: str,
    label: str,
    full: str,
    nonint: str,
    binding: str,
    csv: str,
    png: str,
    pdf: str,
    base_dir: str = ".",
) -> None:
    """Fig. 1 of one system (named ``label`` in the figure) from its full, nonint and
    binding datasets: per-atom CSV, figure."""
    complex_ = load_system(config, system, base_dir)
    full_ds, nonint_ds, binding_ds = (load_dataset(p) for p in (full, nonint, binding))
    amplification = analysis_settings(config).force_amplification
    dec = decompose(full_ds.R, full_ds.F, nonint_ds.F, binding_ds.F, binding_ds.E, amplification)
    table = atom_table(dec, complex_.z, complex_.fragments)
    table.insert(0, "system", system)
    _write_csv(table, csv)
    plot_force_decomposition(label, dec, complex_.z, complex_.fragments, png, pdf)


def learning_curve_table(
    *,
    config: dict,
    system: str,
    datasets: dict[str, str],
    splits: str,
    models: dict[str, str] | None,
    csv: str,
    base_dir: str = ".",
) -> None:
    """Learning curve of one system; ``models`` (the pipeline's, by part) may be None."""
    complex_ = load_system(config, system, base_dir)
    settings = {part: training_settings(config, system, part) for part in datasets}
    perms = {part: read_symmetries(s.symmetries, base_dir) for part, s in settings.items()}
    data = {part: load_dataset(path) for part, path in datasets.items()}
    table = learning_curve(
        data,
        complex_.fragments,
        read_constant_energies(datasets["binding"]),
        load_splits(splits, data["full"].n_geometries),
        learning_curve_sizes(config, system),
        settings,
        perms,
        int(config.get("seed", 0)),
        {p: load_model(path) for p, path in models.items()} if models else None,
    )
    table.insert(0, "system", system)
    _write_csv(with_slopes(table), csv)


def learning_curves_summary(
    *, curves: list[str], names: dict[str, str], csv: str, slopes_csv: str, png: str, pdf: str
) -> None:
    """All systems' learning ``curves`` in one CSV, their slopes and the figure (``names``:
    the systems' names in it)."""
    table = pd.concat([pd.read_csv(p) for p in curves], ignore_index=True)
    fits = slopes(table)
    _write_csv(table, csv)
    _write_csv(fits, slopes_csv)
    plot_learning_curves(table, fits, names, png, pdf)
