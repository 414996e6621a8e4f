"""Publication figures (PNG + PDF) with units on every axis."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deltagdml.atomic_io import atomic_path
from deltagdml.gdml.metrics import E_MAE, F_MAE

P = ParamSpec("P")
T = TypeVar("T")

COLORS = {"full": "#8c8c8c", "delta": "#1f77b4"}
LABELS = {"full": "full sGDML", "delta": "Δ-sGDML"}

#: The figures' style, applied only while a figure is drawn (:func:`styled`).
STYLE = {
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 200,
    "figure.dpi": 100,
}


def styled(plot: Callable[P, T]) -> Callable[P, T]:
    """Draw and save the figure of ``plot`` in :data:`STYLE`, leaving matplotlib's global
    settings as they were."""

    @functools.wraps(plot)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with plt.rc_context(STYLE):
            return plot(*args, **kwargs)

    return wrapper


def subscript_digits(formula: str) -> str:
    """Chemical formula with mathtext subscripts (C6H6 → C$_6$H$_6$)."""
    return re.sub(r"(\d+)", r"$_{\1}$", formula)


def save_figure(fig: plt.Figure, png: str, pdf: str) -> None:
    """Write a figure atomically as PNG and PDF, then close it."""
    for path, metadata in ((png, {}), (pdf, {"CreationDate": None})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", metadata=metadata)
    plt.close(fig)


def _bars(ax, table: pd.DataFrame, value: str, ylabel: str, names: Mapping[str, str]) -> None:
    systems = list(dict.fromkeys(table["system"]))
    x = np.arange(len(systems))
    width = 0.38
    for i, model in enumerate(("full", "delta")):
        sub = table[table["model"] == model].set_index("system").reindex(systems)
        ax.bar(x + (i - 0.5) * width, sub[value], width, color=COLORS[model], label=LABELS[model])
    full = table[table["model"] == "full"].set_index("system").reindex(systems)[value]
    delta = table[table["model"] == "delta"].set_index("system").reindex(systems)[value]
    for xi, f, d in zip(x, full, delta, strict=True):
        ax.annotate(
            f"{100 * (d - f) / f:+.0f} %",
            (xi, max(f, d)),
            ha="center",
            va="bottom",
            fontsize=7,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xticks(x, [names[s] for s in systems], rotation=20, ha="right")
    ax.set_ylabel(ylabel)


@styled
def plot_error_comparison(
    metrics: pd.DataFrame, names: Mapping[str, str], png: str, pdf: str
) -> None:
    """Fig. 6: test MAE of energies and forces, full vs Δ, per system (change in %;
    ``names``: the systems' names in the figure)."""
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8), constrained_layout=True)
    _bars(axes[0], metrics, E_MAE, "energy MAE (kcal/mol)", names)
    _bars(axes[1], metrics, F_MAE, "force MAE (kcal/mol/Å)", names)
    axes[0].legend(frameon=False)
    axes[0].set_title("energies", fontsize=9)
    axes[1].set_title("forces", fontsize=9)
    save_figure(fig, png, pdf)


@styled
def plot_fragment_errors(
    fragments: pd.DataFrame, names: Mapping[str, str], png: str, pdf: str
) -> None:
    """Fig. 7: force MAE on the atoms of each fragment, full vs Δ, per system (``names``:
    the systems' names in the figure)."""
    systems = list(dict.fromkeys(fragments["system"]))
    fig, axes = plt.subplots(
        1,
        len(systems),
        figsize=(1.9 * len(systems) + 0.6, 2.6),
        constrained_layout=True,
        squeeze=False,
    )
    for ax, system in zip(axes[0], systems, strict=True):
        sub = fragments[fragments["system"] == system]
        frags = sorted(sub["fragment"].unique())
        x = np.arange(len(frags))
        for i, model in enumerate(("full", "delta")):
            vals = sub[sub["model"] == model].set_index("fragment").reindex(frags)[F_MAE]
            ax.bar(x + (i - 0.5) * 0.38, vals, 0.38, color=COLORS[model], label=LABELS[model])
        formulas = sub.drop_duplicates("fragment").set_index("fragment").reindex(frags)["formula"]
        ax.set_xticks(
            x, [f"{k}: {subscript_digits(f)}" for k, f in zip(frags, formulas, strict=True)]
        )
        ax.set_title(names[system], fontsize=9)
    axes[0][0].set_ylabel("force MAE (kcal/mol/Å)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=2, frameon=False)
    save_figure(fig, png, pdf)


@styled
def plot_sampling_coverage(
    cvs: np.ndarray,
    selected: np.ndarray,
    temperatures: np.ndarray,
    labels: list[str],
    title: str,
    png: str,
    pdf: str,
) -> None:
    """Candidate frames of all replicas (grey) and the frames chosen for labelling
    (coloured by replica temperature) over two collective variables, with the
    distribution of the first one."""
    fig, (ax, hist) = plt.subplots(
        1, 2, figsize=(7.6, 3.3), width_ratios=[1.5, 1], layout="constrained"
    )
    ax.scatter(*cvs.T[:2], s=3, c="#c8c8c8", lw=0, label="candidate frames", rasterized=True)
    points = ax.scatter(
        *cvs[selected].T[:2],
        s=9,
        c=temperatures[selected],
        cmap="plasma",
        lw=0,
        label="labelled frames",
    )
    fig.colorbar(points, ax=ax, label="replica temperature (K)")
    ax.set(xlabel=labels[0], ylabel=labels[1])
    ax.legend(loc="best", fontsize=7, markerscale=2)
    bins = np.linspace(cvs[:, 0].min(), cvs[:, 0].max(), 31)
    hist.hist(cvs[:, 0], bins=bins, density=True, color="#c8c8c8", label="candidates")
    hist.hist(
        cvs[selected, 0],
        bins=bins,
        density=True,
        histtype="step",
        color="#1f77b4",
        lw=1.5,
        label="labelled",
    )
    hist.set(xlabel=labels[0], ylabel="probability density (1/Å)")
    hist.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, png, pdf)
