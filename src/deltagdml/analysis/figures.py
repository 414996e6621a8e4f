"""Figures of the paper analyses (PNG + PDF) in the style of :mod:`deltagdml.analysis.plotting`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from ase.data import chemical_symbols, covalent_radii
from ase.data.colors import jmol_colors
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch, Polygon
from matplotlib.ticker import FuncFormatter, NullFormatter, ScalarFormatter
from scipy.spatial import ConvexHull

from deltagdml.analysis.binding_stats import QUANTITIES
from deltagdml.analysis.descriptor_variance import DescriptorVariance, Entry, fragment_of_atom
from deltagdml.analysis.force_decomposition import VIEW_TILT_DEG, ForceDecomposition, nice_floor
from deltagdml.analysis.plotting import COLORS, LABELS, plt, save_figure, styled, subscript_digits
from deltagdml.gdml.metrics import E_MAE, F_MAE

ENTRY_COLORS = {"first": "#1f77b4", "second": "#2ca02c", "inter": "#d62728"}
DESCRIPTOR_TITLES = {"inverse_distance": "inverse distance 1/r", "coulomb": "Coulomb matrix"}
UNIT_TEX = {"inverse_distance": ("Å$^{-1}$", "Å$^{-2}$"), "coulomb": ("$E_h$", "$E_h^2$")}
FORCE_COLORS = {"F": "#222222", "F0": COLORS["delta"], "Fb": "#d62728"}
FRAGMENT_COLORS = ("#7f7f7f", "#9467bd", "#8c564b", "#e377c2", "#bcbd22")
#: Length (Å) of the longest force arrow drawn in Fig. 1.
ARROW_MAX_ANG = 1.6


def _signed(x: float) -> str:
    return f"{x:.2f}".replace("-", "−")


def _ratio_text(ratio: float) -> str:
    if np.isnan(ratio):
        return "n/a"
    return "∞" if np.isinf(ratio) else f"{ratio:.2f}"


# -- Fig. 3: descriptor variance ---------------------------------------------------------
def _fragment_map(ax, M: np.ndarray, fragments, title: str, label: str) -> None:
    """N×N map with atoms grouped by fragment, block borders and a colour bar."""
    order = np.concatenate(fragments)
    im = ax.imshow(M[np.ix_(order, order)], cmap="viridis", interpolation="nearest")
    edges = np.cumsum([len(f) for f in fragments])[:-1] - 0.5
    for e in edges:
        ax.axhline(e, color="white", lw=0.8)
        ax.axvline(e, color="white", lw=0.8)
    centres = np.cumsum([0, *[len(f) for f in fragments[:-1]]]) + np.array(
        [(len(f) - 1) / 2 for f in fragments]
    )
    labels = [f"frag. {k}" for k in range(len(fragments))]
    ax.set_xticks(centres, labels)
    ax.set_yticks(centres, labels, rotation=90, va="center")
    ax.tick_params(length=0)
    ax.set_xlabel("atom b (by fragment)", fontsize=7)
    ax.set_ylabel("atom a", fontsize=7)
    ax.set_title(title, fontsize=8)
    bar = ax.figure.colorbar(im, ax=ax, shrink=0.8)
    bar.set_label(label)


@styled
def plot_descriptor_variance(
    label: str,
    results: list[DescriptorVariance],
    table: pd.DataFrame,
    entries: list[Entry],
    z: np.ndarray,
    fragments: list[np.ndarray],
    time_ps: np.ndarray | None,
    frames: tuple[int, int],
    png: str,
    pdf: str,
) -> None:
    """Fig. 3 of the system named ``label``: entry time series, ΔD² of two frames, z² terms
    and per-entry σ, per descriptor."""
    n_frames = results[0].series.shape[0]
    t = time_ps if time_ps is not None else np.arange(n_frames)
    t_label = "time (ps)" if time_ps is not None else "frame index"
    fig, axes = plt.subplots(
        len(results), 5, figsize=(14.0, 2.9 * len(results)), constrained_layout=True
    )
    axes = np.atleast_2d(axes)
    rows = table.set_index("descriptor")
    owner = fragment_of_atom(fragments, len(z))
    where = {e.key: "inter" if e.key == "inter" else f"frag. {owner[e.a]}" for e in entries}
    for row_axes, res in zip(axes, results, strict=True):
        unit, unit_sq = UNIT_TEX[res.name]
        info = rows.loc[res.name]
        ax = row_axes[0]
        for e, series in zip(entries, res.series.T, strict=True):
            ax.plot(
                t,
                series - series.mean(),
                lw=0.8,
                color=ENTRY_COLORS[e.key],
                label=f"{e.label(z)}, {where[e.key]} (mean {series.mean():.3g} {unit})",
            )
        for f in frames:
            ax.axvline(t[f], color="0.6", ls=":", lw=0.8)
        ax.set_xlabel(t_label)
        ax.set_ylabel(f"$D_{{ab}} - \\langle D_{{ab}} \\rangle$ ({unit})")
        ax.set_title(f"A  {DESCRIPTOR_TITLES[res.name]}: entries", fontsize=8, loc="left")
        ax.legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(0.0, -0.3))
        _fragment_map(
            row_axes[1],
            res.dD2,
            fragments,
            f"ΔD$^2$ between frames {frames[0]} and {frames[1]}",
            f"ΔD$_{{ab}}^2$ ({unit_sq})",
        )
        ax = row_axes[2]
        # blocks of single-atom fragments hold only a constant diagonal entry: not shown
        terms = [f"intra_{k}" for k, f in enumerate(fragments) if len(f) > 1] + ["inter"]
        values = [res.decomposition[k] for k in terms]
        names = [f"intra\nfrag. {k.split('_')[1]}" if k != "inter" else "inter" for k in terms]
        colors = [COLORS["full"]] * (len(terms) - 1) + [ENTRY_COLORS["inter"]]
        ax.bar(names, values, color=colors)
        total = res.decomposition["total"]
        for i, v in enumerate(values):
            share = 100 * v / total if total > 0 else float("nan")
            ax.annotate(f"{share:.1f} %", (i, v), ha="center", va="bottom", fontsize=7)
        ax.set_ylabel(f"term of $z^2$ ({unit_sq})")
        ax.set_title(
            f"B  $z^2$ = {total:.3g} {unit_sq}; mean inter share over\n"
            f"{int(info['n_pairs'])} random pairs: {100 * res.inter_fraction:.1f} %",
            fontsize=8,
            loc="left",
        )
        ax.margins(y=0.15)
        for col, what, std, u in (
            (3, "dD", res.std_dD, unit),
            (4, "dD2", res.std_dD2, unit_sq),
        ):
            sym = "ΔD" if what == "dD" else "ΔD$^2$"
            ratio = _ratio_text(info[f"ratio_std_{what}"])
            title = f"C  σ({sym}); σ$_{{inter}}$/σ$_{{intra}}$ = {ratio}"
            _fragment_map(row_axes[col], std, fragments, title, f"σ({sym}$_{{ab}}$) ({u})")
    fig.suptitle(f"{label}: descriptor variance along the trajectory", fontsize=9)
    save_figure(fig, png, pdf)


# -- Fig. 5: binding statistics ----------------------------------------------------------
@styled
def plot_binding_stats(
    values: dict[str, dict[str, np.ndarray]], names: Mapping[str, str], png: str, pdf: str
) -> None:
    """Fig. 5: box plots of binding energies and binding-force magnitudes per system
    (``names``: the systems' names in the figure)."""
    systems = list(values)
    ylabels = {
        "binding_energy": "binding energy $E - \\Sigma_k E_k$ (kcal/mol)",
        "binding_force_magnitude": "$|F_b|$ per atom (kcal/mol/Å)",
    }
    fig, axes = plt.subplots(1, 2, figsize=(1.3 * len(systems) + 3.6, 3.2), layout="constrained")
    for ax, quantity in zip(axes, QUANTITIES, strict=True):
        data = [values[s][quantity] for s in systems]
        ax.boxplot(
            data,
            whis=(0, 100),
            showmeans=True,
            meanline=True,
            widths=0.55,
            patch_artist=True,
            boxprops={"facecolor": "#c6dbef", "edgecolor": COLORS["delta"]},
            whiskerprops={"color": COLORS["delta"]},
            capprops={"color": COLORS["delta"]},
            medianprops={"color": "black", "ls": "-", "lw": 1.2},
            meanprops={"color": "#d62728", "ls": "--", "lw": 1.2},
        )
        for i, v in enumerate(data, start=1):
            ax.annotate(
                _signed(float(np.median(v))),
                (i + 0.3, float(np.median(v))),
                fontsize=6,
                va="center",
            )
        ax.set_xticks(
            np.arange(1, len(systems) + 1), [names[s] for s in systems], rotation=20, ha="right"
        )
        ax.set_xlim(0.5, len(systems) + 0.8)
        ax.set_ylabel(ylabels[quantity])
    axes[0].axhline(0.0, color="0.7", lw=0.6, zorder=0)
    if all(v["binding_force_magnitude"].min() > 0 for v in values.values()):
        axes[1].set_yscale("log")  # magnitudes of neutral and ionic complexes span decades
    fig.legend(
        handles=[
            Line2D([], [], color="black", ls="-", label="median (value at the box)"),
            Line2D([], [], color="#d62728", ls="--", label="mean"),
            Patch(fc="#c6dbef", ec=COLORS["delta"], label="interquartile range"),
            Line2D([], [], color=COLORS["delta"], label="whiskers: min, max"),
        ],
        loc="outside lower center",
        ncol=4,
        frameon=False,
        fontsize=7,
    )
    save_figure(fig, png, pdf)


# -- Fig. 1: force decomposition ---------------------------------------------------------
def _atom_radius(z: int) -> float:
    return 0.4 * float(covalent_radii[z]) + 0.1


def _draw_complex(ax, R: np.ndarray, z: np.ndarray, fragments: list[np.ndarray]) -> None:
    """Atoms as circles coloured by element (far ones first), dashed fragment outlines."""
    for i in np.argsort(R[:, 2]):
        ax.add_patch(
            Circle(R[i, :2], _atom_radius(z[i]), fc=jmol_colors[z[i]], ec="black", lw=0.5, zorder=2)
        )
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    for k, idx in enumerate(fragments):
        pad = np.concatenate([R[i, :2] + (_atom_radius(z[i]) + 0.25) * ring for i in idx])
        hull = pad[ConvexHull(pad).vertices]
        ax.add_patch(Polygon(hull, fill=False, ls="--", lw=0.8, ec=_fragment_color(k), zorder=1))


def _fragment_color(k: int) -> str:
    return FRAGMENT_COLORS[k % len(FRAGMENT_COLORS)]


@styled
def plot_force_decomposition(
    label: str,
    dec: ForceDecomposition,
    z: np.ndarray,
    fragments: list[np.ndarray],
    png: str,
    pdf: str,
) -> None:
    """Fig. 1 of the system named ``label``: arrows of F, F0 and amplified F_b on one
    frame, all on one length scale."""
    view = dec.in_view(fragments)
    R = view["R"]
    k = dec.amplification
    shown = {"F": view["F"], "F0": view["F0"], "Fb": k * view["Fb"]}
    f_max = max(float(np.linalg.norm(v, axis=1).max()) for v in shown.values())
    scale = ARROW_MAX_ANG / f_max  # Å of arrow per kcal/mol/Å
    ref = nice_floor(f_max / 2)
    titles = {
        "F": "full forces $F$",
        "F0": "isolated fragments $F_0$",
        "Fb": f"binding forces $F_b$ × {k:g}",
    }
    fig, axes = plt.subplots(1, 3, figsize=(7.6, 3.1), constrained_layout=True, sharey=True)
    lo = R[:, :2].min(axis=0) - ARROW_MAX_ANG - 0.6
    hi = R[:, :2].max(axis=0) + ARROW_MAX_ANG + 0.6
    for ax, (key, vec) in zip(axes, shown.items(), strict=True):
        _draw_complex(ax, R, z, fragments)
        q = ax.quiver(
            R[:, 0],
            R[:, 1],
            scale * vec[:, 0],
            scale * vec[:, 1],
            angles="xy",
            scale_units="xy",
            scale=1,
            color=FORCE_COLORS[key],
            width=0.012,
            zorder=3,
        )
        key_value = ref / k if key == "Fb" else ref
        ax.quiverkey(
            q,
            0.13,
            0.95,
            scale * ref,
            f"{key_value:.3g} kcal/mol/Å",
            labelpos="E",
            coordinates="axes",
            fontproperties={"size": 7},
        )
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_title(titles[key], fontsize=9, color=FORCE_COLORS[key])
        ax.set_xlabel("x (Å)")
    axes[0].set_ylabel("y (Å)")
    elements = sorted(set(z.tolist()))
    handles = [
        Line2D(
            [], [], marker="o", ls="", mfc=jmol_colors[e], mec="black", label=chemical_symbols[e]
        )
        for e in elements
    ] + [
        Line2D([], [], ls="--", lw=0.8, color=_fragment_color(k), label=f"frag. {k}")
        for k in range(len(fragments))
    ]
    axes[2].legend(
        handles=handles,
        frameon=False,
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        handlelength=1.5,
    )
    fig.suptitle(
        f"{label}: frame {dec.frame} (binding energy {dec.binding_energy:.2f} kcal/mol, "
        f"closest to the median)\nside view: fragment 0 → 1 axis up, tilted {VIEW_TILT_DEG:g}° "
        "towards the viewer; forces projected on the page",
        fontsize=9,
    )
    save_figure(fig, png, pdf)


# -- learning curves ---------------------------------------------------------------------
def _plain_log_ticks(axis, lo: float, hi: float) -> None:
    """Three to six ticks at round numbers between ``lo`` and ``hi``, in plain notation."""
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    for mantissas in ((1, 2, 5), (1, 2, 3, 5), range(1, 10)):
        ticks = [m * 10.0**k for k in decades for m in mantissas if lo <= m * 10.0**k <= hi]
        if len(ticks) >= 3:
            break
    if len(ticks) > 6:
        decade_ticks = [10.0**k for k in decades if lo <= 10.0**k <= hi]
        ticks = decade_ticks if len(decade_ticks) >= 3 else ticks[::2]
    axis.set_ticks(ticks)
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


@styled
def plot_learning_curves(
    table: pd.DataFrame, fits: pd.DataFrame, names: Mapping[str, str], png: str, pdf: str
) -> None:
    """Test force and energy MAE of full and Δ models vs training-set size (log–log), one
    column per system (``names``: the systems' names in the figure)."""
    systems = list(dict.fromkeys(table["system"]))
    fig, axes = plt.subplots(
        2,
        len(systems),
        figsize=(2.0 * len(systems) + 0.8, 4.4),
        constrained_layout=True,
        squeeze=False,
    )
    ylabels = {F_MAE: "test force MAE (kcal/mol/Å)", E_MAE: "test energy MAE (kcal/mol)"}
    slope = fits.set_index(["system", "model", "quantity"])
    for col, system in enumerate(systems):
        sub = table[table["system"] == system]
        for row, q in enumerate((F_MAE, E_MAE)):
            ax = axes[row][col]
            for model, marker in (("full", "o"), ("delta", "s")):
                m = sub[sub["model"] == model].sort_values("n_train")
                fit = slope.loc[(system, model, q)]
                n = m["n_train"].to_numpy(dtype=float)
                ax.loglog(
                    n,
                    m[q],
                    marker=marker,
                    ls="",
                    color=COLORS[model],
                    ms=4,
                    label=f"{LABELS[model]} (slope {_signed(fit['slope'])})",
                )
                if np.isfinite(fit["slope"]):
                    ax.loglog(
                        n,
                        10 ** (fit["intercept_log10"] + fit["slope"] * np.log10(n)),
                        ls="--",
                        lw=0.8,
                        color=COLORS[model],
                    )
            ax.set_xticks(sorted(sub["n_train"].unique()))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
            lo, hi = float(sub[q].min()) / 1.15, float(sub[q].max()) * 3.0  # room for legend
            ax.set_ylim(lo, hi)
            _plain_log_ticks(ax.yaxis, lo, hi)
            ax.legend(frameon=False, fontsize=6, loc="upper right")
            if row == 0:
                ax.set_title(names[system], fontsize=9)
            else:
                ax.set_xlabel("training geometries $n$")
            if col == 0:
                ax.set_ylabel(ylabels[q])
    save_figure(fig, png, pdf)


# -- Fig. 2: Coulomb matrix ---------------------------------------------------------------
@styled
def plot_coulomb_matrix(
    label: str,
    C: np.ndarray,
    fragments: list[np.ndarray],
    fragment_names: list[str],
    blocks: pd.DataFrame,
    png: str,
    pdf: str,
) -> None:
    """Heat map of a Coulomb matrix (hartree, log scale) of the system named ``label``, atoms
    grouped by fragment, with the intra-fragment blocks outlined and the inter-fragment block
    marked."""
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    order = np.concatenate(fragments)
    M = C[np.ix_(order, order)]
    n = len(order)
    fig, ax = plt.subplots(figsize=(4.6, 3.9), layout="constrained")
    positive = M[M > 0]
    im = ax.imshow(
        np.where(M > 0, M, np.nan),
        cmap="viridis",
        norm=LogNorm(positive.min(), positive.max()),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, shrink=0.85, label="Coulomb matrix entry ($E_h$)")
    sizes = [len(f) for f in fragments]
    starts = np.cumsum([0, *sizes[:-1]])
    share = blocks.groupby("block")["frobenius2_share"].sum()
    for start, size in zip(starts, sizes, strict=True):
        ax.add_patch(
            Rectangle((start - 0.5, start - 0.5), size, size, fill=False, ec="white", lw=1.2)
        )
        if size >= n / 6:  # room for a label inside the block
            ax.text(start + size / 2 - 0.5, start + size / 2 - 0.5, "intra", color="white",
                    ha="center", va="center", fontsize=8)  # fmt: skip
    if len(fragments) > 1 and min(sizes[:2]) >= n / 6:
        ax.text(starts[1] + sizes[1] / 2 - 0.5, sizes[0] / 2 - 0.5, "inter", color="#ffb3b3",
                ha="center", va="center", fontsize=8)  # fmt: skip
    centres = starts + (np.array(sizes) - 1) / 2
    names = [subscript_digits(f) for f in fragment_names]
    ax.set_xticks(centres, names)
    ax.set_yticks(centres, names, rotation=90, va="center")
    ax.tick_params(length=0)
    ax.set(xlim=(-0.5, n - 0.5), ylim=(n - 0.5, -0.5))
    ax.set_xlabel("atom b (grouped by fragment)")
    ax.set_ylabel("atom a (grouped by fragment)")
    ax.set_title(
        f"{label}: Coulomb matrix of one geometry\n"
        f"share of $\\|C\\|_F^2$ off the diagonal: intra {share.get('intra', 0):.2f}, "
        f"inter {share.get('inter', 0):.2f}",
        fontsize=8,
    )
    save_figure(fig, png, pdf)
