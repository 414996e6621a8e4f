"""One function per workflow step; the Snakemake scripts only unpack paths and call these.

Every step validates its inputs before expensive work and writes its outputs atomically.
Units: kcal/mol, kcal/mol/Å, Å.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .atomic_io import atomic_path, save_npz_atomic, write_text_atomic
from .composite import DeltaModel
from .config import (
    load_system,
    model_parts,
    part_train_sizes,
    sampling_settings,
    system_entry,
    train_pool_size,
    training_settings,
)
from .data.calculators import calculator_label, set_single_thread
from .data.delta import build_delta_datasets
from .data.frame_selection import select_frames
from .data.ingest import ingest_dataset
from .data.labelling import chunk_indices, label_frames, load_labels, merge_labels, save_labels
from .data.md_sampling import load_trajectory, sample_md, save_trajectory
from .data.splits import (
    load_splits,
    make_splits,
    save_splits,
    train_indices,
    union_train_indices,
)
from .dataset import load_dataset, save_dataset
from .delta_io import TrainingRecord, save_delta_model
from .dynamics import dynamics_settings
from .dynamics.collective import CV2_COLUMNS, cv_pair
from .frames_io import write_frames
from .metrics import ERROR_COLUMNS, ERROR_UNITS, F_MAE, error_summary, mae
from .model_io import load_model, save_model
from .npz_io import as_str, read_npz
from .selection import select_sigma_configured

log = logging.getLogger("deltagdml")
#: The sampler's energies and forces, carried from the replicas to the labelled frames.
SAMPLER_KEYS = ("sampler_E", "sampler_F")


def setup_logging(log_path: str | os.PathLike | None) -> None:
    """Send the package's log to ``log_path`` (and stderr) at INFO level."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )


def _progress(message: str) -> None:
    log.info(message)


def sample_replica(
    config: dict,
    name: str,
    replica: int,
    out_path: str,
    frames_path: str | None = None,
    base_dir: str = ".",
) -> None:
    """Langevin MD of one sampling replica (one temperature of ``sampling.temperatures_K``)
    with the sampling calculator (the reference method unless ``sampling.calculator``).

    ``frames_path`` (optional): the frames with the sampler's energies and forces, for ASE.
    """
    set_single_thread()
    system = load_system(config, name, base_dir)
    s = sampling_settings(config, name)
    temperature = s["temperatures_K"][replica]
    sampler, reference = calculator_label(s["calculator"]), theory_label(config)
    if sampler != reference:
        log.info("%s: sampling with %s; labels will come from %s", name, sampler, reference)
    t0 = time.perf_counter()
    traj = sample_md(
        system,
        s["calculator"],
        temperature,
        s["timestep_fs"],
        s["frames_per_replica"],
        s["stride"],
        seed=int(config.get("seed", 0)) + replica,
        friction_per_fs=s["friction_per_fs"],
        restraint=s.get("restraint"),
        progress=_progress,
        equilibration_steps=s["equilibration_steps"],
    )
    traj |= {
        "replica": np.full(len(traj["R"]), replica),
        "temperature_K": np.full(len(traj["R"]), float(temperature)),
        "sampler": sampler,
    }
    save_trajectory(traj, out_path)
    if frames_path:
        info = {"time_fs": traj["time_fs"], "temperature_K": traj["temperature_K"]}
        write_frames(frames_path, traj["z"], traj["R"], traj["sampler_E"], traj["sampler_F"], info)
    d = traj["com_distance"]
    log.info(
        "%s: replica %d (%g K), %d frames in %.0f s; COM distance %.2f–%.2f Å (mean %.2f Å)",
        name,
        replica,
        temperature,
        len(d),
        time.perf_counter() - t0,
        d.min(),
        d.max(),
        d.mean(),
    )


def select(
    config: dict,
    name: str,
    replica_paths: list[str],
    *,
    trajectory: str,
    table: str,
    png: str,
    pdf: str,
    base_dir: str = ".",
) -> None:
    """Choose the frames to label among all replicas' frames (``sampling.selection``).

    Writes the labelled frames with their replica, temperature, time and collective
    variables (``trajectory``, ``table``) and a figure of the CV coverage.
    """
    from .plotting import plot_sampling_coverage  # matplotlib only where needed

    system = load_system(config, name, base_dir)
    s = sampling_settings(config, name)
    replicas = [load_trajectory(p) for p in replica_paths]
    pool = {
        key: np.concatenate([r[key] for r in replicas])
        for key in ("R", "com_distance", "time_fs", "replica", "temperature_K", *SAMPLER_KEYS)
        if all(key in r for r in replicas)
    }
    analysis = dynamics_settings(config, name)["analysis"]
    labels, cvs = cv_pair(analysis, system, system.atoms.positions)
    pool["cv"] = cvs(pool["R"])
    seed = int(config.get("seed", 0))
    idx = select_frames(pool["cv"], s["n_frames"], s["selection"], seed, pool["replica"])
    sampler, reference = calculator_label(s["calculator"]), theory_label(config)
    out = {key: value[idx] for key, value in pool.items()}
    out |= {
        "z": replicas[0]["z"],
        "candidate_index": idx,
        "cv_names": np.array(["R_CM_A", CV2_COLUMNS[analysis["cv2"]["kind"]]]),
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
            **{name_: out["cv"][:, k] for k, name_ in enumerate(out["cv_names"])},
        }
    )
    with atomic_path(table) as tmp:
        frame_table.to_csv(tmp, index=False, float_format="%.6g")
    title = f"{name}: sampled with {sampler}, labelled with {reference}"
    plot_sampling_coverage(pool["cv"], idx, pool["temperature_K"], labels, title, png, pdf)
    for k, label in enumerate(out["cv_names"]):
        log.info(
            "%s: %s candidates %.2f–%.2f Å, selected (%s) %.2f–%.2f Å, %d of %d frames",
            name,
            label,
            pool["cv"][:, k].min(),
            pool["cv"][:, k].max(),
            s["selection"],
            out["cv"][:, k].min(),
            out["cv"][:, k].max(),
            len(idx),
            len(pool["cv"]),
        )


def label_chunk(
    config: dict,
    name: str,
    traj_path: str,
    chunk: int,
    n_chunks: int,
    out_path: str,
    base_dir: str = ".",
) -> None:
    """Reference energies/forces of the complex and its fragments for one chunk of frames."""
    set_single_thread()
    system = load_system(config, name, base_dir)
    traj = load_trajectory(traj_path)
    idx = chunk_indices(len(traj["R"]), n_chunks)[chunk]
    labels = label_frames(
        system, traj["R"][idx], config.get("reference"), progress=_progress, frame_indices=idx
    )
    save_labels(labels, out_path)


def merge(chunk_paths: list[str], out_path: str, frames_path: str | None = None) -> None:
    """Concatenate label chunks in frame order; optionally also write the labelled complex
    frames for ASE and viewers (reference energies and forces in eV, eV/Å)."""
    labels = merge_labels(chunk_paths)
    save_labels(labels, out_path)
    if frames_path:
        info = {"frame_index": labels["frame_index"]}
        write_frames(frames_path, labels["z"], labels["R"], labels["E"], labels["F"], info)


def ingest(config: dict, name: str, out_path: str, base_dir: str = ".") -> None:
    """Labels from a user's dataset (fragment labels from files or the reference method)."""
    set_single_thread()
    entry = system_entry(config, name)
    system = load_system(config, name, base_dir)
    fragment_files = entry.get("fragment_labels")
    labels = ingest_dataset(
        Path(base_dir) / entry["dataset"],
        system,
        fragment_files=[Path(base_dir) / f for f in fragment_files] if fragment_files else None,
        calc_spec=None if fragment_files else config.get("reference"),
        progress=_progress,
    )
    save_labels(labels, out_path)


def theory_label(config: dict) -> str:
    """Human-readable name of the reference method."""
    return calculator_label(config.get("reference"))


def delta_dataset(
    config: dict, name: str, labels_path: str, part: str, out_path: str, base_dir: str = "."
) -> None:
    """Write one of the Δ datasets: full, fragment_k, nonint or binding."""
    system = load_system(config, name, base_dir)
    datasets = build_delta_datasets(system, load_labels(labels_path, system), theory_label(config))
    if part not in datasets:
        raise KeyError(f"system '{name}' has no dataset '{part}'; it has {sorted(datasets)}")
    save_dataset(datasets[part], out_path)


def split(config: dict, name: str, full_path: str, out_path: str) -> None:
    """Energy-stratified train/valid/test indices shared by every model of a system."""
    ds = load_dataset(full_path)
    t = training_settings(config, name)
    sizes = part_train_sizes(t, model_parts(load_system(config, name))) if t["parts"] else None
    pool = train_pool_size(t)
    seed = int(config.get("seed", 0))
    splits = make_splits(ds.E, pool, t["n_valid"], t["n_test"], seed, part_sizes=sizes)
    save_splits(splits, out_path, n_geometries=ds.n_geometries)


def _symmetries(setting: str, base_dir: str) -> str | np.ndarray:
    if setting in ("auto", "none"):
        return setting
    return np.load(Path(base_dir) / setting, allow_pickle=False)


def train(
    config: dict,
    name: str,
    part: str,
    dataset_path: str,
    splits_path: str,
    model_path: str,
    scores_path: str,
    timing_path: str,
    base_dir: str = ".",
) -> None:
    """Train one sGDML model with σ chosen on the validation split.

    Validation errors per σ go to ``scores_path`` (reproducible); wall times per σ to
    ``timing_path`` (they vary from run to run, so they are kept apart).
    """
    ds = load_dataset(dataset_path)
    splits = load_splits(splits_path, ds.n_geometries)
    t = training_settings(config, name, part)
    idxs_train = train_indices(splits, part)
    tr, va = ds.subset(idxs_train), ds.subset(splits["valid"])
    # Iterative-solver state, resumed if this job is restarted; removed once trained.
    checkpoints = Path(model_path).parent / f".{part}_cg_checkpoints"
    log.info(
        "%s/%s: %d atoms, %d training and %d validation geometries",
        name,
        part,
        ds.n_atoms,
        tr.n_geometries,
        va.n_geometries,
    )
    perms = _symmetries(t["symmetries"], base_dir)
    model, scores = select_sigma_configured(tr, va, t, perms, str(checkpoints))
    table = pd.DataFrame([s.as_dict() for s in scores])
    table.insert(0, "selected", table["sigma"] == model.sigma)
    table.insert(0, "n_perms", len(model.perms_))
    table.insert(0, "part", part)
    table.insert(0, "system", name)
    with atomic_path(scores_path) as tmp:
        table.drop(columns="train_s").to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(timing_path) as tmp:
        table[["system", "part", "sigma", "selected", "train_s"]].to_csv(
            tmp, index=False, float_format="%.3f"
        )
    save_model(
        model,
        model_path,
        idxs_train=idxs_train,
        idxs_valid=splits["valid"],
        md5_train=ds.md5(),
        md5_valid=ds.md5(),
        dataset_name=ds.name,
        dataset_theory=ds.theory,
    )
    shutil.rmtree(checkpoints, ignore_errors=True)


def load_delta_model(
    config: dict, name: str, model_paths: dict[str, str], binding_path: str, base_dir: str = "."
) -> DeltaModel:
    """Assemble the composite from fragment and binding model files."""
    system = load_system(config, name, base_dir)
    extra = read_npz(binding_path, ("constant_fragments", "constant_energies"), "dataset")
    constants = dict(
        zip(extra["constant_fragments"].tolist(), extra["constant_energies"].tolist(), strict=True)
    )
    parts = {part: load_model(path) for part, path in model_paths.items() if part != "full"}
    return DeltaModel.from_parts(system.z, system.fragments, parts, constants)


def bundle_delta(
    config: dict,
    name: str,
    *,
    model_paths: dict[str, str],
    binding_dataset: str,
    full_dataset: str,
    splits: str,
    output: str,
    base_dir: str = ".",
) -> None:
    """Write the Δ model of a system as one file (:mod:`deltagdml.delta_io`)."""
    delta = load_delta_model(config, name, model_paths, binding_dataset, base_dir)
    ds = load_dataset(full_dataset)
    idx = load_splits(splits, ds.n_geometries)
    part_info = {}
    for part in delta.parts():
        meta = read_npz(model_paths[part], (), "model", optional=("md5_train", "md5_valid"))
        part_info[part] = {key: as_str(value) for key, value in meta.items()}
    record = TrainingRecord(
        md5=ds.md5(),
        idxs_train=union_train_indices(idx, delta.parts()).tolist(),
        idxs_valid=idx["valid"].tolist(),
    )
    save_delta_model(delta, output, part_info=part_info, record=record, theory=theory_label(config))
    log.info("%s: Δ model (%s) written to %s", name, ", ".join(delta.parts()), output)


def model_card(
    config: dict,
    name: str,
    card: str,
    *,
    model: str,
    dataset: str | None,
    splits: str,
    scores: list[str],
    metrics: str,
    output: str,
) -> None:
    """A JSON card beside model ``card`` (full, fragment_k, binding or delta): level of
    theory, sampler, σ, training size, validation and test errors, units.

    The full and Δ models' test errors are those of the evaluation (the complex's test
    split); a part's are on its own dataset's test split.
    """
    entry = system_entry(config, name)
    s = sampling_settings(config, name) if "dataset" not in entry else None
    chosen = pd.concat([pd.read_csv(p) for p in scores]).query("selected").set_index("part")
    out: dict = {
        "model": card,
        "file": Path(model).name,
        "system": name,
        "kind": "Δ-sGDML (fragments + binding)" if card == "delta" else "sGDML",
        "level_of_theory": theory_label(config),
        "sampled_with": calculator_label(s["calculator"]) if s else "user dataset",
        "units": {"energy": "kcal/mol", "force": "kcal/mol/Ang", "length": "Ang"},
        "code_version": f"deltagdml {__version__}",
    }
    if card == "delta":
        parts = chosen.index.drop("full")
        out["parts"] = {p: {"sigma": float(chosen.loc[p, "sigma"])} for p in parts}
    else:
        gdml = load_model(model)
        out |= {
            "sigma": gdml.sigma,
            "n_train": int(gdml.X_train_.shape[0]),
            "n_perms": int(len(gdml.perms_)),
            "validation": {k: float(chosen.loc[card, k]) for k in ERROR_COLUMNS},
        }
    tested = pd.read_csv(metrics).set_index("model")
    if card in tested.index:
        row = tested.loc[card]
        out["n_train"] = int(row["n_train"])
        out["test"] = {"n_test": int(row["n_test"]), **{k: float(row[k]) for k in ERROR_COLUMNS}}
    else:
        ds = load_dataset(dataset)
        test = ds.subset(load_splits(splits, ds.n_geometries)["test"])
        E, F = gdml.predict(test.R)
        out["test"] = {"n_test": test.n_geometries, **error_summary(E, F, test.E, test.F)}
    write_text_atomic(output, json.dumps(out, indent=2, ensure_ascii=False) + "\n")


def evaluate(
    config: dict,
    name: str,
    full_path: str,
    binding_path: str,
    splits_path: str,
    model_paths: dict[str, str],
    metrics_path: str,
    fragments_path: str,
    predictions_path: str,
    scores_paths: list[str],
    base_dir: str = ".",
) -> None:
    """Test-set errors of the full and Δ models (overall and per fragment)."""
    system = load_system(config, name, base_dir)
    ds = load_dataset(full_path)
    splits = load_splits(splits_path, ds.n_geometries)
    test = ds.subset(splits["test"])
    full = load_model(model_paths["full"])
    delta = load_delta_model(config, name, model_paths, binding_path, base_dir)
    full.check_atoms(ds.z, full_path)
    delta.check_atoms(ds.z, full_path)
    E_full, F_full = full.predict(test.R)
    E_delta, F_delta = delta.predict(test.R)
    scores = pd.concat([pd.read_csv(p) for p in scores_paths])
    chosen = scores[scores["selected"]].set_index("part")
    rows = []
    for label, E, F, parts in (
        ("full", E_full, F_full, ["full"]),
        ("delta", E_delta, F_delta, [p for p in model_parts(system) if p != "full"]),
    ):
        rows.append(
            {
                "system": name,
                "model": label,
                "n_atoms": ds.n_atoms,
                "n_train": len(union_train_indices(splits, parts)),
                "n_test": test.n_geometries,
                **error_summary(E, F, test.E, test.F),
                "sigma": ";".join(f"{p}={chosen.loc[p, 'sigma']:g}" for p in parts),
                "n_perms": ";".join(f"{p}={int(chosen.loc[p, 'n_perms'])}" for p in parts),
            }
        )
    frag_rows = []
    for k, idx in enumerate(system.fragments):
        charge = system.fragment_charges[k]
        formula = system.atoms[idx].get_chemical_formula(mode="hill")
        formula += {0: "", 1: "⁺", -1: "⁻"}.get(charge, f"({charge:+d})")
        for label, F in (("full", F_full), ("delta", F_delta)):
            frag_rows.append(
                {
                    "system": name,
                    "fragment": k,
                    "formula": formula,
                    "n_atoms": len(idx),
                    "model": label,
                    F_MAE: mae(F[:, idx], test.F[:, idx]),
                }
            )
    for path, table in ((metrics_path, rows), (fragments_path, frag_rows)):
        with atomic_path(path) as tmp:
            pd.DataFrame(table).to_csv(tmp, index=False, float_format="%.6g")
    save_npz_atomic(
        predictions_path,
        idxs_test=splits["test"],
        E_ref=test.E,
        F_ref=test.F,
        E_full=E_full,
        F_full=F_full,
        E_delta=E_delta,
        F_delta=F_delta,
        e_unit=np.array("kcal/mol"),
        r_unit=np.array("Ang"),
    )


def summarise(
    metrics_paths: list[str],
    fragments_paths: list[str],
    timing_paths: list[str],
    out: dict[str, str],
) -> None:
    """Tables and figures over all systems (the paper's Table S1, Fig. 6 and Fig. 7).

    ``out["training_times"]`` collects wall times (σ search per model), the one output
    that differs between otherwise identical runs.
    """
    from .plotting import plot_error_comparison, plot_fragment_errors

    metrics = pd.concat([pd.read_csv(p) for p in metrics_paths], ignore_index=True)
    fragments = pd.concat([pd.read_csv(p) for p in fragments_paths], ignore_index=True)
    wide = metrics.pivot(index="system", columns="model", values=list(ERROR_COLUMNS))
    comparison = pd.DataFrame(index=wide.index)
    for (q, unit), column in zip(ERROR_UNITS.items(), ERROR_COLUMNS, strict=True):
        comparison[f"{q}_full_{unit}"] = wide[(column, "full")]
        comparison[f"{q}_delta_{unit}"] = wide[(column, "delta")]
        comparison[f"{q}_change_pct"] = (
            100.0 * (wide[(column, "delta")] - wide[(column, "full")]) / wide[(column, "full")]
        )
    comparison = comparison.reset_index()
    timings = pd.concat([pd.read_csv(p) for p in timing_paths], ignore_index=True)
    times = timings.groupby(["system", "part"], sort=False).agg(
        n_sigmas=("sigma", "size"),
        sigma_selected=("sigma", lambda s: s[timings.loc[s.index, "selected"]].iloc[0]),
        search_s=("train_s", "sum"),
    )
    tables = (
        ("metrics", metrics),
        ("comparison", comparison),
        ("fragments", fragments),
        ("training_times", times.reset_index()),
    )
    for key, table in tables:
        with atomic_path(out[key]) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
    plot_error_comparison(metrics, out["fig6_png"], out["fig6_pdf"])
    plot_fragment_errors(fragments, out["fig7_png"], out["fig7_pdf"])
    lines = [
        "# Δ-sGDML vs full sGDML: test-set errors",
        "",
        "Energies in kcal/mol, forces in kcal/mol/Å. Change = (Δ − full)/full; negative means "
        "the Δ model is better.",
        "",
        "| system | force MAE full | force MAE Δ | change | energy MAE full | energy MAE Δ |"
        " change |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in comparison.iterrows():
        lines.append(
            f"| {r['system']} | {r['f_mae_full_kcal_mol_A']:.4f} | "
            f"{r['f_mae_delta_kcal_mol_A']:.4f} | {r['f_mae_change_pct']:+.1f} % | "
            f"{r['e_mae_full_kcal_mol']:.4f} | {r['e_mae_delta_kcal_mol']:.4f} | "
            f"{r['e_mae_change_pct']:+.1f} % |"
        )
    lines += [
        "",
        "Per-fragment force MAE (kcal/mol/Å):",
        "",
        "| system | fragment | atoms | full | Δ |",
        "|---|---|---|---|---|",
    ]
    fw = fragments.pivot_table(
        index=["system", "fragment", "n_atoms"], columns="model", values=F_MAE
    ).reset_index()
    for _, r in fw.iterrows():
        lines.append(
            f"| {r['system']} | {r['fragment']} | {r['n_atoms']} | {r['full']:.4f} | "
            f"{r['delta']:.4f} |"
        )
    with atomic_path(out["summary"]) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    log.info("summary written: %s", json.dumps({k: str(v) for k, v in out.items()}))
