"""Figures of the MD study: free-energy surfaces, MSAD curves, the stability table and the
uncertainty along each run."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from deltagdml.analysis.plotting import LABELS, plt, save_figure, styled

STABLE_COLOR, UNSTABLE_COLOR = "#d9f0d3", "#f4a6a6"
#: text and marks of "left its data" (a part's uncertainty above its threshold)
LEFT_DATA_COLOR = "#b35806"
#: ⟨θ²⟩ (rad²) of uniformly random rotations, θ with density (1 − cos θ)/π on [0, π].
RANDOM_MSAD = np.pi**2 / 3 + 2


def _model_panels(n: int, sharex: bool) -> tuple[plt.Figure, np.ndarray]:
    """One row of ``n`` panels, one per model, sharing the y axis."""
    return plt.subplots(
        1,
        n,
        figsize=(2.9 * n + 0.6, 2.6),
        sharex=sharex,
        sharey=True,
        squeeze=False,
        constrained_layout=True,
    )


def _models(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table["model"]))


def _temperatures(table: pd.DataFrame) -> list[float]:
    return sorted(table["temperature_K"].unique())


@styled
def plot_fes_grid(
    fes: list[np.ndarray],
    ranges: tuple[tuple[float, float], tuple[float, float]],
    table: pd.DataFrame,
    x_label: str,
    y_label: str,
    label: str,
    png: str,
    pdf: str,
) -> None:
    """Free-energy surfaces of the system named ``label``: models (rows) × temperatures
    (columns), one kcal/mol colour scale per temperature."""
    models, temps = _models(table), _temperatures(table)
    fig, axes = plt.subplots(
        len(models),
        len(temps),
        figsize=(1.75 * len(temps) + 0.9, 1.75 * len(models) + 1.2),
        sharex=True,
        sharey=True,
        squeeze=False,
        constrained_layout=True,
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    extent = [*ranges[0], *ranges[1]]
    for j, t in enumerate(temps):
        column = [
            F for F, (_, r) in zip(fes, table.iterrows(), strict=True) if r.temperature_K == t
        ]
        finite = np.concatenate([F[np.isfinite(F)] for F in column] + [np.zeros(1)])
        vmax = max(float(finite.max()), 1e-6)
        image = None
        for (_, r), F in zip(table.iterrows(), fes, strict=True):
            if r.temperature_K != t:
                continue
            ax = axes[models.index(r.model), j]
            image = ax.imshow(
                F.T, origin="lower", extent=extent, aspect="auto", cmap=cmap, vmin=0, vmax=vmax
            )
            if r.status != "stable":
                ax.text(
                    0.03,
                    0.97,
                    f"unstable at\n{r.failure_time_ps:.2f} ps",
                    transform=ax.transAxes,
                    va="top",
                    fontsize=7,
                    color="#b00000",
                    bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1},
                )
        axes[0, j].set_title(f"{t:g} K", fontsize=9)
        fig.colorbar(image, ax=axes[:, j], location="bottom", shrink=0.9, aspect=12).set_label(
            "F (kcal/mol)", fontsize=8
        )
    for i, model in enumerate(models):
        axes[i, 0].set_ylabel(f"{LABELS[model]}\n{y_label}", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel(x_label, fontsize=8)
    fig.suptitle(f"{label}: free energy −kT ln P", fontsize=10)
    save_figure(fig, png, pdf)


@styled
def plot_msad(
    curves: pd.DataFrame,
    table: pd.DataFrame,
    guest: str | None,
    label: str,
    png: str,
    pdf: str,
) -> None:
    """MSAD (rad²) of the guest against lag time (ps), one panel per model, of the system
    named ``label``."""
    models, temps = _models(table), _temperatures(table)
    fig, axes = _model_panels(len(models), sharex=False)
    colors = plt.get_cmap("plasma")(np.linspace(0.0, 0.85, len(temps)))
    status = table.set_index(["model", "temperature_K"])["status"]
    saturates = not curves.empty and curves["msad_rad2"].max() > 0.5 * RANDOM_MSAD
    for ax, model in zip(axes[0], models, strict=True):
        for color, t in zip(colors, temps, strict=True):
            sub = curves[(curves["model"] == model) & (curves["temperature_K"] == t)]
            if not sub.empty:
                dashed = status.get((model, t)) != "stable"
                ax.plot(sub["lag_ps"], sub["msad_rad2"], color=color, ls="--" if dashed else "-")
        if saturates:
            ax.axhline(RANDOM_MSAD, color="0.6", lw=0.8, ls=":")
        ax.set_title(LABELS[model], fontsize=9)
        ax.set_xlabel("lag time τ (ps)")
        if guest is None:
            ax.text(0.5, 0.5, "no fragment with ≥ 3 atoms", ha="center", transform=ax.transAxes)
    handles = [
        Line2D([], [], color=c, label=f"{t:g} K") for c, t in zip(colors, temps, strict=True)
    ]
    if (table["status"] != "stable").any():
        handles.append(Line2D([], [], color="0.3", ls="--", label="unstable run"))
    if saturates:
        handles.append(Line2D([], [], color="0.6", lw=0.8, ls=":", label="random orientation"))
    axes[0, -1].legend(
        handles=handles, frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0)
    )
    axes[0, 0].set_ylabel("MSAD (rad²)")
    fig.suptitle(f"{label}: rotation of {guest}" if guest else label, fontsize=10)
    save_figure(fig, png, pdf)


def _criterion(reason: str) -> str:
    """The broken criterion of a failure ``reason``, with the part for 'uncertainty'."""
    criterion = reason.split(":")[0]
    return f"{criterion} ({reason.split()[1]})" if criterion == "uncertainty" else criterion


@styled
def plot_stability(table: pd.DataFrame, names: Mapping[str, str], png: str, pdf: str) -> None:
    """Stability table: one row per system and model, one column per temperature, each
    cell the failure time and criterion (or 'stable') and when the run left its data
    (``names``: the systems' names in the figure)."""
    temps = _temperatures(table)
    rows = list(dict.fromkeys(zip(table["system"], table["model"], strict=True)))
    fig, ax = plt.subplots(figsize=(1.25 * len(temps) + 2.4, 0.55 * len(rows) + 0.8))
    for i, (system, model) in enumerate(rows):
        sub = table[(table["system"] == system) & (table["model"] == model)]
        for j, t in enumerate(temps):
            cell = sub[sub["temperature_K"] == t]
            if cell.empty:
                continue
            r = cell.iloc[0]
            stable = r["status"] == "stable"
            text = (
                f"stable\n{r['simulated_ps']:.2f} ps"
                if stable
                else f"{r['failure_time_ps']:.2f} ps\n{_criterion(r['reason'])}"
            )
            ax.add_patch(
                plt.Rectangle(
                    (j, i), 1, 1, color=STABLE_COLOR if stable else UNSTABLE_COLOR, ec="white"
                )
            )
            left = float(r.get("left_data_time_ps", np.nan))  # absent in older tables
            ax.text(
                j + 0.5,
                i + (0.5 if np.isnan(left) else 0.38),
                text,
                ha="center",
                va="center",
                fontsize=7,
            )
            if not np.isnan(left):
                ax.text(
                    j + 0.5,
                    i + 0.82,
                    f"left data {left:.2f} ps",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color=LEFT_DATA_COLOR,
                )
    ax.set_xlim(0, len(temps))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks(np.arange(len(temps)) + 0.5, [f"{t:g} K" for t in temps])
    ax.set_yticks(
        np.arange(len(rows)) + 0.5,
        [f"{names[s]} · {LABELS[m]}" for s, m in rows],
    )
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(
        "MD stability (time of failure and broken criterion;\n"
        "time a model part's uncertainty first exceeded its threshold)",
        fontsize=9,
        pad=18,
    )
    save_figure(fig, png, pdf)


@styled
def plot_uncertainty(
    curves: pd.DataFrame, table: pd.DataFrame, label: str, png: str, pdf: str
) -> None:
    """Uncertainty ratio (the largest part's uncertainty over its calibrated threshold)
    against time (ps), one panel per model and one line per temperature, of the system
    named ``label``; above 1 a run has left its data."""
    models, temps = _models(table), _temperatures(table)
    fig, axes = _model_panels(len(models), sharex=True)
    colors = plt.get_cmap("plasma")(np.linspace(0.0, 0.85, len(temps)))
    status = table.set_index(["model", "temperature_K"])["status"]
    finite = curves[np.isfinite(curves["uncertainty_ratio"])]
    for ax, model in zip(axes[0], models, strict=True):
        for color, t in zip(colors, temps, strict=True):
            sub = finite[(finite["model"] == model) & (finite["temperature_K"] == t)]
            if sub.empty:
                continue
            unstable = status.get((model, t)) != "stable"
            ax.plot(
                sub["time_ps"], sub["uncertainty_ratio"], color=color, ls="--" if unstable else "-"
            )
            if unstable:
                ax.plot(
                    sub["time_ps"].iloc[-1], sub["uncertainty_ratio"].iloc[-1], "x", color=color
                )
        ax.set_title(LABELS[model], fontsize=9)
        ax.set_xlabel("time (ps)")
        if finite[finite["model"] == model].empty:
            ax.text(0.5, 0.5, "no calibrated thresholds", ha="center", transform=ax.transAxes)
        else:
            ax.axhline(1.0, color=LEFT_DATA_COLOR, lw=0.8, ls=":")
    if not finite.empty:
        axes[0, 0].set_yscale("log")
    handles = [
        Line2D([], [], color=c, label=f"{t:g} K") for c, t in zip(colors, temps, strict=True)
    ]
    if (table["status"] != "stable").any():
        handles.append(Line2D([], [], color="0.3", ls="--", marker="x", label="unstable run"))
    handles.append(Line2D([], [], color=LEFT_DATA_COLOR, lw=0.8, ls=":", label="threshold"))
    axes[0, -1].legend(
        handles=handles, frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0)
    )
    axes[0, 0].set_ylabel("uncertainty / threshold\n(largest part)")
    fig.suptitle(f"{label}: model uncertainty along MD", fontsize=10)
    save_figure(fig, png, pdf)
