"""Steps of ``evaluate.smk``: test errors of the full and Δ models, model cards and the
summary over all systems (Table S1, Figs. 6 and 7).

Units: kcal/mol, kcal/mol/Å, Å.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deltagdml.analysis.paper import paper_comparison, paper_markdown
from deltagdml.atomic_io import atomic_path, save_npz_atomic, write_text_atomic
from deltagdml.data.calculators import calculator_label
from deltagdml.data.splits import load_splits, union_train_indices
from deltagdml.data.systems import model_parts
from deltagdml.gdml.composite import DeltaModel
from deltagdml.gdml.dataset import Dataset, load_dataset
from deltagdml.gdml.delta_io import load_model as load_any_model
from deltagdml.gdml.metrics import ERROR_COLUMNS, ERROR_UNITS, F_MAE, F_R2, error_summary, mae, r2
from deltagdml.gdml.model_io import load_model
from deltagdml.version import __version__
from deltagdml.workflow.config import load_system, sampling_settings, system_entry
from deltagdml.workflow.steps.data import theory_label

log = logging.getLogger(__name__)
#: Test force R² (:func:`~deltagdml.gdml.metrics.r2`) below which a binding model counts as
#: having learned almost nothing: a warning in the log and in ``summary.md``.
LOW_R2 = 0.1


def model_card(
    *,
    config: dict,
    system: str,
    card: str,
    model: str,
    dataset: str | None,
    splits: str,
    scores: list[str],
    metrics: str,
    output: str,
) -> None:
    """A JSON card beside model ``card`` (full, fragment_k, binding or delta): level of
    theory, sampler, σ, training size, validation and test errors and force R², units, and
    the uncertainty estimator with its calibrated threshold (per part for Δ).

    The full and Δ models' test errors are those of the evaluation (the complex's test
    split); a part's are on its own dataset's test split.
    """
    entry = system_entry(config, system)
    s = sampling_settings(config, system) if "dataset" not in entry else None
    chosen = _selected_scores(scores)
    out: dict = {
        "model": card,
        "file": Path(model).name,
        "system": system,
        "kind": "Δ-sGDML (fragments + binding)" if card == "delta" else "sGDML",
        "level_of_theory": theory_label(config),
        "sampled_with": calculator_label(s.calculator) if s else "user dataset",
        "units": {"energy": "kcal/mol", "force": "kcal/mol/Ang", "length": "Ang"},
        "code_version": f"deltagdml {__version__}",
    }
    if card == "delta":
        loaded = load_any_model(model)
        learned = loaded.parts() if isinstance(loaded, DeltaModel) else {}
        out["parts"] = {
            p: {"sigma": float(chosen.loc[p, "sigma"])}
            | ({"uncertainty": learned[p].uncertainty_summary()} if p in learned else {})
            for p in chosen.index.drop("full")
        }
    else:
        gdml = load_model(model)
        out |= {
            "sigma": gdml.sigma,
            "n_train": int(gdml.X_train_.shape[0]),
            "n_perms": int(len(gdml.perms_)),
            "validation": {k: float(chosen.loc[card, k]) for k in (*ERROR_COLUMNS, F_R2)},
            "uncertainty": gdml.uncertainty_summary(),
        }
    tested = pd.read_csv(metrics).set_index("model")
    if card in tested.index:
        row = tested.loc[card]
        out["n_train"] = int(row["n_train"])
        errors = {k: float(row[k]) for k in (*ERROR_COLUMNS, F_R2)}
        out["test"] = {"n_test": int(row["n_test"]), **errors}
    else:
        ds = load_dataset(dataset)
        test = ds.subset(load_splits(splits, ds.n_geometries)["test"])
        E, F = gdml.predict(test.R)
        errors = {**error_summary(E, F, test.E, test.F), F_R2: r2(F, test.F)}
        out["test"] = {"n_test": test.n_geometries, **errors}
    write_text_atomic(output, json.dumps(out, indent=2, ensure_ascii=False) + "\n")


def _selected_scores(scores: list[str]) -> pd.DataFrame:
    """The selected σ's row of each part's scores file, by part (validation R² NaN in files
    written before it was recorded)."""
    chosen = pd.concat([pd.read_csv(p) for p in scores]).query("selected").set_index("part")
    return chosen if F_R2 in chosen else chosen.assign(**{F_R2: float("nan")})


def _part_test_r2(
    delta: DeltaModel, test: Dataset, F_binding: np.ndarray, F_full: np.ndarray
) -> dict[str, float]:
    """Test force R² of each part on its own targets: the complex's forces (full, predicted
    ``F_full``), the binding residual ``F_binding`` (binding) and each learned fragment's
    isolated forces, F − F_binding on its atoms."""
    out, learned = {"full": r2(F_full, test.F)}, delta.parts()
    for part, (_, F) in delta.predict_parts(test.R).items():
        if part == "binding":
            out[part] = r2(F, F_binding)
        elif part in learned:
            atoms = delta.fragments[int(part.removeprefix("fragment_"))].atoms
            out[part] = r2(F, (test.F - F_binding)[:, atoms])
    return out


def evaluate(
    *,
    config: dict,
    system: str,
    models: dict[str, str],
    scores: list[str],
    full_dataset: str,
    binding_dataset: str,
    splits: str,
    metrics: str,
    fragments: str,
    predictions: str,
    base_dir: str = ".",
) -> None:
    """Test-set errors of the full and Δ models (overall and per fragment) from the part
    ``models``; σ and permutation counts from the ``scores`` files. Each row also holds the
    force R² of its model (``f_r2``) and of its parts on validation and test
    (``part_f_r2_valid``, ``part_f_r2_test``: ``part=R²;…``); a binding model with test
    R² below :data:`LOW_R2` is warned about."""
    complex_ = load_system(config, system, base_dir)
    ds = load_dataset(full_dataset)
    split = load_splits(splits, ds.n_geometries)
    test = ds.subset(split["test"])
    full = load_model(models["full"])
    delta = DeltaModel.from_files(complex_.z, complex_.fragments, models, binding_dataset)
    full.check_atoms(ds.z, full_dataset)
    delta.check_atoms(ds.z, full_dataset)
    E_full, F_full = full.predict(test.R)
    E_delta, F_delta = delta.predict(test.R)
    chosen = _selected_scores(scores)
    F_binding = load_dataset(binding_dataset).subset(split["test"]).F
    test_r2 = _part_test_r2(delta, test, F_binding, F_full)
    if test_r2["binding"] < LOW_R2:
        log.warning(
            "%s: the binding model explains almost nothing of its forces (test R² %.3f < %g)",
            system,
            test_r2["binding"],
            LOW_R2,
        )
    rows = []
    for label, E, F, parts in (
        ("full", E_full, F_full, ["full"]),
        ("delta", E_delta, F_delta, [p for p in model_parts(complex_) if p != "full"]),
    ):
        rows.append(
            {
                "system": system,
                "model": label,
                "n_atoms": ds.n_atoms,
                "n_train": len(union_train_indices(split, parts)),
                "n_test": test.n_geometries,
                **error_summary(E, F, test.E, test.F),
                F_R2: r2(F, test.F),
                "sigma": ";".join(f"{p}={chosen.loc[p, 'sigma']:g}" for p in parts),
                "n_perms": ";".join(f"{p}={int(chosen.loc[p, 'n_perms'])}" for p in parts),
                "part_f_r2_valid": ";".join(f"{p}={chosen.loc[p, F_R2]:.4f}" for p in parts),
                "part_f_r2_test": ";".join(f"{p}={test_r2[p]:.4f}" for p in parts),
            }
        )
    frag_rows = []
    for k, idx in enumerate(complex_.fragments):
        charge = complex_.fragment_charges[k]
        formula = complex_.atoms[idx].get_chemical_formula(mode="hill")
        formula += {0: "", 1: "⁺", -1: "⁻"}.get(charge, f"({charge:+d})")
        for label, F in (("full", F_full), ("delta", F_delta)):
            frag_rows.append(
                {
                    "system": system,
                    "fragment": k,
                    "formula": formula,
                    "n_atoms": len(idx),
                    "model": label,
                    F_MAE: mae(F[:, idx], test.F[:, idx]),
                }
            )
    for path, records in ((metrics, rows), (fragments, frag_rows)):
        with atomic_path(path) as tmp:
            pd.DataFrame(records).to_csv(tmp, index=False, float_format="%.6g")
    save_npz_atomic(
        predictions,
        idxs_test=split["test"],
        E_ref=test.E,
        F_ref=test.F,
        E_full=E_full,
        F_full=F_full,
        E_delta=E_delta,
        F_delta=F_delta,
        e_unit=np.array("kcal/mol"),
        r_unit=np.array("Ang"),
    )


def _by_part(cell: str) -> dict[str, float]:
    """A ``part=value;…`` cell of the metrics table as {part: value}."""
    return {part: float(v) for part, v in (item.split("=") for item in cell.split(";"))}


def summarise(
    *,
    metrics: list[str],
    fragments: list[str],
    timings: list[str],
    presets: dict[str, str | None],
    names: dict[str, str],
    out: dict[str, str],
) -> None:
    """Tables and figures over all systems (the paper's Table S1, Fig. 6 and Fig. 7) from
    every system's ``metrics``, ``fragments`` errors and training ``timings``; ``out`` holds
    the rule's outputs by name. Systems built on a ``presets`` entry the paper studied are
    also set beside the paper's numbers (``out["paper"]``, and the summary). ``names``: the
    systems' names in the figures.

    ``out["training_times"]`` collects wall times (σ search per model), the one output
    that differs between otherwise identical runs.
    """
    from deltagdml.analysis.plotting import plot_error_comparison, plot_fragment_errors

    all_metrics = pd.concat([pd.read_csv(p) for p in metrics], ignore_index=True)
    all_fragments = pd.concat([pd.read_csv(p) for p in fragments], ignore_index=True)
    wide = all_metrics.pivot(index="system", columns="model", values=list(ERROR_COLUMNS))
    comparison = pd.DataFrame(index=wide.index)
    for (q, unit), column in zip(ERROR_UNITS.items(), ERROR_COLUMNS, strict=True):
        comparison[f"{q}_full_{unit}"] = wide[(column, "full")]
        comparison[f"{q}_delta_{unit}"] = wide[(column, "delta")]
        comparison[f"{q}_change_pct"] = (
            100.0 * (wide[(column, "delta")] - wide[(column, "full")]) / wide[(column, "full")]
        )
    comparison = comparison.reset_index()
    all_timings = pd.concat([pd.read_csv(p) for p in timings], ignore_index=True)
    times = all_timings.groupby(["system", "part"], sort=False).agg(
        n_sigmas=("sigma", "size"),
        sigma_selected=("sigma", lambda s: s[all_timings.loc[s.index, "selected"]].iloc[0]),
        search_s=("train_s", "sum"),
    )
    tables = (
        ("metrics", all_metrics),
        ("comparison", comparison),
        ("fragments", all_fragments),
        ("training_times", times.reset_index()),
    )
    for key, table in tables:
        with atomic_path(out[key]) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
    plot_error_comparison(all_metrics, names, out["fig6_png"], out["fig6_pdf"])
    plot_fragment_errors(all_fragments, names, out["fig7_png"], out["fig7_pdf"])
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
    fw = all_fragments.pivot_table(
        index=["system", "fragment", "n_atoms"], columns="model", values=F_MAE
    ).reset_index()
    for _, r in fw.iterrows():
        lines.append(
            f"| {r['system']} | {r['fragment']} | {r['n_atoms']} | {r['full']:.4f} | "
            f"{r['delta']:.4f} |"
        )
    lines += [
        "",
        "Explained variance of each part's forces, R² = 1 − Σ|F − F̂|² / Σ|F − F̄|² over all "
        "force components (F̄ their mean):",
        "",
        "| system | part | R² validation | R² test |",
        "|---|---|---|---|",
    ]
    warnings = []
    for _, r in all_metrics.iterrows():
        valid, test = _by_part(r["part_f_r2_valid"]), _by_part(r["part_f_r2_test"])
        for part in test:
            lines.append(f"| {r['system']} | {part} | {valid[part]:.4f} | {test[part]:.4f} |")
            if part == "binding" and test[part] < LOW_R2:
                warnings.append(
                    f"Warning: the binding model of {r['system']} explains almost nothing of "
                    f"its forces (test R² {test[part]:.3f} < {LOW_R2:g})."
                )
    for warning in warnings:
        log.warning(warning)
        lines += ["", f"**{warning}**"]
    paper = paper_comparison(comparison, all_metrics, presets)
    with atomic_path(out["paper"]) as tmp:
        paper.to_csv(tmp, index=False, float_format="%.6g")
    lines += paper_markdown(paper)
    with atomic_path(out["summary"]) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    log.info("summary written: %s", json.dumps({k: str(v) for k, v in out.items()}))
