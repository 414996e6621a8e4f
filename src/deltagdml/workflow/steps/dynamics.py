"""Steps of ``dynamics.smk``: the MD stability study of the full and Δ models (Fig. 8).

Units: Å, ps, K, kcal/mol; uncertainties in their estimator's unit (``uncertainty_unit``:
kcal/mol or σ), and their ratio to the calibrated threshold, dimensionless.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
from ase import Atoms

from deltagdml.atomic_io import atomic_path, save_npz_atomic, write_text_atomic
from deltagdml.data.frames import write_frames
from deltagdml.data.splits import load_splits, train_indices
from deltagdml.dynamics.collective import choose_guest, cv_pair, guest_orientations
from deltagdml.dynamics.collective import msad as rotational_msad
from deltagdml.dynamics.fes import common_ranges, free_energy_surface
from deltagdml.dynamics.run import MDCalculator, MDResult, run_md
from deltagdml.gdml.composite import DeltaModel
from deltagdml.gdml.dataset import load_dataset
from deltagdml.gdml.model_io import load_model
from deltagdml.npz_io import as_str, read_npz
from deltagdml.workflow.config import dynamics_settings, load_system

log = logging.getLogger(__name__)
RUN_KEYS = (
    "time_ps",
    "R",
    "energy_kcal_mol",
    "kinetic_temperature_K",
    "model",
    "temperature_K",
    "reason",
    "failure_time_ps",
    "steps_done",
    "n_steps",
    "start_index",
)
#: the keys of a run's uncertainty that are not a part's (``uncertainty_<part>``)
UNCERTAINTY_KEYS = ("uncertainty_ratio", "uncertainty_unit")


def start_index(E: np.ndarray | None, train: np.ndarray, start: str = "median_energy") -> int:
    """The training geometry with the median (``start="median_energy"``) or the lowest
    (``"lowest_energy"``) reference energy; the first one without energies."""
    if E is None:
        return int(train[0])
    order = np.argsort(E[train], kind="stable")
    return int(train[order[0] if start == "lowest_energy" else order[len(train) // 2]])


def md_run(
    *,
    config: dict,
    system: str,
    model: str,
    temperature: float,
    models: dict[str, str],
    binding_dataset: str | None,
    full_dataset: str,
    splits: str,
    run: str,
    timing: str,
    frames: str | None = None,
    base_dir: str = ".",
) -> None:
    """One MD run of the ``model`` ('full' or 'delta', from the part ``models``) at
    ``temperature`` (K), started from a training geometry (``dynamics.start``).

    The run goes to ``run``; its speed to ``timing`` (it varies from run to run, so it is
    kept apart); ``frames`` (optional) gets the frames for ASE.
    """
    s = dynamics_settings(config, system)
    complex_ = load_system(config, system, base_dir)
    if model == "full":
        predictor = load_model(models["full"])
    else:
        predictor = DeltaModel.from_files(complex_.z, complex_.fragments, models, binding_dataset)
    ds = load_dataset(full_dataset)
    # the start geometry is one the full model trained on
    split = load_splits(splits, ds.n_geometries)
    i0 = start_index(ds.E, train_indices(split, "full"), s.start)
    result = run_md(
        Atoms(complex_.z, positions=ds.R[i0]),
        MDCalculator(predictor),
        complex_.fragments,
        temperature,
        s.timestep_fs,
        s.n_steps,
        s.stride,
        s.friction_per_fs,
        int(config.get("seed", 0)),
        s.stability,
        s.restraint,
        progress=lambda line: log.info("%s/%s at %g K: %s", system, model, temperature, line),
    )
    log.info(
        "%s/%s at %g K: %s after %.3f ps (%d steps, %.0f steps/s; uncertainty %.1f s)",
        system,
        model,
        temperature,
        result.reason or "stable",
        result.time_ps[-1],
        result.steps_done,
        result.steps_per_s,
        result.uncertainty_wall_s,
    )
    if np.isfinite(result.left_data_time_ps):
        log.info(
            "%s/%s at %g K: left its data at %.3f ps",
            system,
            model,
            temperature,
            result.left_data_time_ps,
        )
    save_run(result, run, model, temperature, s.n_steps, i0)
    if frames:
        write_frames(
            frames,
            complex_.z,
            result.R,
            result.energy_kcal_mol,
            result.forces_kcal_mol_A,
            info=result.frame_info(),
        )
    speed = {
        "system": system,
        "n_atoms": complex_.n_atoms,
        "model": model,
        "temperature_K": temperature,
        "steps": result.steps_done,
        "wall_s": result.wall_s,
        "steps_per_s": result.steps_per_s,
    }
    with atomic_path(timing) as tmp:
        pd.DataFrame([speed]).to_csv(tmp, index=False, float_format="%.6g")


def save_run(
    result: MDResult,
    path: str | os.PathLike,
    model_label: str,
    temperature_K: float,
    n_steps_planned: int,
    start: int,
) -> None:
    """Write an MD run as ``.npz`` (Å, ps, kcal/mol, K); ``reason`` is '' for a stable run.

    The uncertainty of each part goes to ``uncertainty_<part>`` (frames,) in
    ``uncertainty_unit``, with ``uncertainty_ratio`` (frames,) and ``left_data_time_ps``
    (NaN: never above a threshold, or none calibrated).
    """
    save_npz_atomic(
        path,
        time_ps=result.time_ps,
        R=result.R,
        energy_kcal_mol=result.energy_kcal_mol,
        kinetic_temperature_K=result.temperature_K,
        model=np.array(model_label),
        temperature_K=np.array(float(temperature_K)),
        reason=np.array(result.reason or ""),
        failure_time_ps=np.array(result.failure_time_ps),
        steps_done=np.array(result.steps_done),
        n_steps=np.array(n_steps_planned),
        start_index=np.array(start),
        r_unit=np.array("Ang"),
        e_unit=np.array("kcal/mol"),
        **{f"uncertainty_{part}": std for part, std in result.uncertainty.items()},
        uncertainty_ratio=result.uncertainty_ratio,
        uncertainty_unit=np.array(result.uncertainty_unit),
        left_data_time_ps=np.array(result.left_data_time_ps),
    )


def load_run(path: str | os.PathLike) -> dict:
    """Read a run written by :func:`save_run`; scalars become Python values. A run written
    before uncertainties were recorded loads without them (ratio and time NaN)."""
    data = read_npz(path, RUN_KEYS, "MD run", optional=None)
    run = {k: data[k] for k in ("time_ps", "R", "energy_kcal_mol", "kinetic_temperature_K")}
    run.update(model=as_str(data["model"]), reason=as_str(data["reason"]))
    for key in ("temperature_K", "failure_time_ps"):
        run[key] = float(data[key])
    for key in ("steps_done", "n_steps", "start_index"):
        run[key] = int(data[key])
    run["uncertainty"] = {
        key.removeprefix("uncertainty_"): data[key]
        for key in data
        if key.startswith("uncertainty_") and key not in UNCERTAINTY_KEYS
    }
    run["uncertainty_ratio"] = data.get("uncertainty_ratio", np.full(len(data["time_ps"]), np.nan))
    run["uncertainty_unit"] = as_str(data["uncertainty_unit"]) if "uncertainty_unit" in data else ""
    run["left_data_time_ps"] = float(data.get("left_data_time_ps", np.nan))
    return run


def analysed_frames(run: dict, equilibration_ps: float) -> np.ndarray:
    """Frames after equilibration, without the frame at which a run was found unstable."""
    keep = run["time_ps"] >= equilibration_ps
    if run["reason"]:
        keep[-1] = False
    return run["R"][keep]


def md_analyse(
    *,
    config: dict,
    system: str,
    label: str,
    runs: list[str],
    stability: str,
    msad: str,
    fes: str,
    fes_png: str,
    fes_pdf: str,
    msad_png: str,
    msad_pdf: str,
    uncertainty_png: str,
    uncertainty_pdf: str,
    base_dir: str = ".",
) -> None:
    """Stability table (with when each run left its data), free-energy surfaces, MSAD and
    uncertainty along time of all ``runs`` of one system (named ``label`` in the figures)."""
    from deltagdml.dynamics.figures import plot_fes_grid, plot_msad, plot_uncertainty

    a = dynamics_settings(config, system).analysis
    complex_ = load_system(config, system, base_dir)
    loaded = sorted(
        (load_run(p) for p in runs), key=lambda r: (r["model"] != "full", r["temperature_K"])
    )
    guest = choose_guest(complex_, a.guest_fragment)
    (x_label, y_label), cvs = cv_pair(a, complex_, loaded[0]["R"][0])
    frames = [analysed_frames(r, a.equilibration_ps) for r in loaded]
    xs, ys = zip(*(cvs(R).T for R in frames), strict=True)
    ranges = common_ranges(xs, ys)
    surfaces = [
        free_energy_surface(x, y, r["temperature_K"], a.fes_bins, ranges, a.fes_smoothing_bins)
        for x, y, r in zip(xs, ys, loaded, strict=True)
    ]
    rows, curves = [], []
    for r, R in zip(loaded, frames, strict=True):
        rows.append(
            {
                "system": system,
                "n_atoms": complex_.n_atoms,
                "model": r["model"],
                "temperature_K": r["temperature_K"],
                "status": "unstable" if r["reason"] else "stable",
                "failure_time_ps": r["failure_time_ps"],
                "reason": r["reason"],
                "simulated_ps": r["time_ps"][-1],
                "left_data_time_ps": r["left_data_time_ps"],
                "max_uncertainty_ratio": _max_ratio(r["uncertainty_ratio"]),
            }
        )
        if guest is None or len(R) < 2:
            continue
        g = complex_.fragments[guest]
        U = guest_orientations(R, g, np.setdiff1d(np.arange(complex_.n_atoms), g))
        m = rotational_msad(U, int(a.msad_max_lag_fraction * (len(R) - 1)))
        curves.append(
            pd.DataFrame(
                {
                    "model": r["model"],
                    "temperature_K": r["temperature_K"],
                    "lag_ps": np.arange(m.size) * (r["time_ps"][1] - r["time_ps"][0]),
                    "msad_rad2": m,
                }
            )
        )
    table = pd.DataFrame(rows)
    curve_table = (
        pd.concat(curves, ignore_index=True)
        if curves
        else pd.DataFrame(columns=["model", "temperature_K", "lag_ps", "msad_rad2"])
    )
    for path, t in ((stability, table), (msad, curve_table)):
        with atomic_path(path) as tmp:
            t.to_csv(tmp, index=False, float_format="%.6g")
    save_npz_atomic(
        fes,
        F_kcal_mol=np.array(surfaces),
        x_edges=np.linspace(*ranges[0], a.fes_bins + 1),
        y_edges=np.linspace(*ranges[1], a.fes_bins + 1),
        model=np.array([r["model"] for r in loaded]),
        temperature_K=np.array([r["temperature_K"] for r in loaded]),
        x_label=np.array(x_label),
        y_label=np.array(y_label),
    )
    plot_fes_grid(surfaces, ranges, table, x_label, y_label, label, fes_png, fes_pdf)
    guest_name = None
    if curves:
        guest_name = (
            f"fragment {guest} ({complex_.atoms[complex_.fragments[guest]].get_chemical_formula()})"
        )
    plot_msad(curve_table, table, guest_name, label, msad_png, msad_pdf)
    ratios = pd.concat(
        [
            pd.DataFrame(
                {
                    "model": r["model"],
                    "temperature_K": r["temperature_K"],
                    "time_ps": r["time_ps"],
                    "uncertainty_ratio": r["uncertainty_ratio"],
                }
            )
            for r in loaded
        ],
        ignore_index=True,
    )
    plot_uncertainty(ratios, table, label, uncertainty_png, uncertainty_pdf)


def _max_ratio(ratio: np.ndarray) -> float:
    """The largest finite uncertainty ratio of a run; NaN without thresholds."""
    finite = ratio[np.isfinite(ratio)]
    return float(finite.max()) if finite.size else float("nan")


def md_summary(
    *,
    stability: list[str],
    timing: list[str],
    names: dict[str, str],
    csv: str,
    md: str,
    png: str,
    pdf: str,
    speed: str,
) -> None:
    """Stability table over all systems (``csv``, Markdown ``md``, figure); MD ``speed`` per
    model (CSV) from every run's ``timing``; ``names``: the systems' names in the figure."""
    from deltagdml.dynamics.figures import plot_stability

    table = pd.concat([pd.read_csv(p, keep_default_na=False) for p in stability])
    for column in ("failure_time_ps", "left_data_time_ps", "max_uncertainty_ratio"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    timings = pd.concat([pd.read_csv(p) for p in timing])
    speeds = (
        timings.groupby(["system", "n_atoms", "model"], sort=False)["steps_per_s"]
        .median()
        .reset_index()
    )
    for path, t in ((csv, table), (speed, speeds)):
        with atomic_path(path) as tmp:
            t.to_csv(tmp, index=False, float_format="%.6g")
    write_text_atomic(md, stability_markdown(table))
    plot_stability(table, names, png, pdf)


def stability_markdown(table: pd.DataFrame) -> str:
    """Model × temperature table per system: 'stable' or the failure time and reason, and
    when the run left its data."""
    temps = sorted(table["temperature_K"].unique())
    lines = [
        "# MD stability of the full and Δ models",
        "",
        "Langevin MD per model and thermostat temperature; a cell gives the time (ps) at which",
        "a run broke a stability criterion, and which one, and the time (ps) at which it left",
        "its data: the first saved frame where a model part's uncertainty exceeded its",
        "calibrated threshold. MD speed: `md_timing.csv`.",
        "",
        "| system | model | " + " | ".join(f"{t:g} K" for t in temps) + " |",
        "|---|---|" + "---|" * len(temps),
    ]
    for (system, model), sub in table.groupby(["system", "model"], sort=False):
        sub = sub.set_index("temperature_K")
        cells = []
        for t in temps:
            if t not in sub.index:
                cells.append("–")
            else:
                r = sub.loc[t]
                cell = (
                    f"stable ({r['simulated_ps']:.2f} ps)"
                    if r["status"] == "stable"
                    else f"**{r['failure_time_ps']:.3f} ps**: {r['reason']}"
                )
                if np.isfinite(r["left_data_time_ps"]):
                    cell += f"; left data at {r['left_data_time_ps']:.2f} ps"
                cells.append(cell)
        lines.append(f"| {system} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
