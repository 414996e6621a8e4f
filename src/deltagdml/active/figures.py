"""The figure of the active-learning rounds.

Units: ps, K, kcal/mol/Å; ratios are dimensionless.
"""

from __future__ import annotations

import pandas as pd

from deltagdml.analysis.plotting import plt, save_figure, styled


@styled
def plot_rounds(table: pd.DataFrame, label: str, png: str, pdf: str) -> None:
    """Per round: frames added per part, test force MAE per model, the earliest threshold
    crossing per temperature, and the largest uncertainty ratio."""
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), constrained_layout=True)
    per_round = table.groupby("round").first()
    rounds = per_round.index.tolist()
    names = ["delta", *sorted(c.removeprefix("added_") for c in per_round.filter(like="added_"))]
    colour = {name: f"C{i}" for i, name in enumerate(names)}
    for ax, prefix, ylabel, title in (
        (axes[0], "added_", "frames added", "labelled frames per part"),
        (axes[1], "test_f_mae_", "test force MAE (kcal/mol/Å)", "round-0 test set"),
    ):
        for col in per_round.filter(like=prefix):
            name = col.removeprefix(prefix)
            ax.plot(rounds, per_round[col], "o-", color=colour[name], label=name)
        ax.set(xlabel="round", ylabel=ylabel, title=title)
    for t, sub in table.groupby("temperature_K"):
        axes[2].plot(sub["round"], sub["first_left_data_ps"], "o-", label=f"{t:g} K")
        axes[3].plot(sub["round"], sub["largest_ratio"], "o-", label=f"{t:g} K")
    axes[2].set(xlabel="round", ylabel="first threshold crossing (ps)", title="exploration")
    axes[3].axhline(1.0, color="0.5", lw=0.8, ls="--")
    axes[3].set(xlabel="round", ylabel="largest uncertainty / threshold", yscale="log")
    axes[3].set_title("exploration")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.set_xticks(rounds)
    fig.suptitle(f"{label}: active-learning rounds (round r explores with the model of r − 1)")
    save_figure(fig, png, pdf)
