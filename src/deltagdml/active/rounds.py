"""Whether another round is needed, what each round did, and the figure of the rounds.

Units: ps, K, kcal/mol, kcal/mol/Å; ratios are dimensionless.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deltagdml.active.explore import is_failure, largest_ratio
from deltagdml.analysis.plotting import save_figure, styled


def decision(explorations: list[dict], n_selected: int) -> dict:
    """Whether the loop goes on after a round's exploration: it stops when every run stayed
    stable and every part under its threshold (converged), or when there is nothing new to
    label (stalled)."""
    ratios = [largest_ratio(d) for d in explorations]
    largest = float(max(r.max() for r in ratios))
    failed = sum(
        bool(r) and not r.startswith("uncertainty") for d in explorations for r in d["reasons"]
    )
    converged = failed == 0 and largest <= 1.0
    if converged:
        why = "every run stayed stable and under the thresholds"
    elif n_selected == 0:
        why = "no frame to label (a failure with no frame before it)"
    else:
        why = f"{failed} run(s) failed, largest ratio {largest:.3g}: {n_selected} frames to label"
    return {
        "converged": converged,
        "continue": not converged and n_selected > 0,
        "reason": why,
        "largest_ratio": largest,
        "failed_runs": failed,
        "n_selected": n_selected,
    }


def exploration_rows(explorations: list[dict]) -> list[dict]:
    """Per temperature: runs, failures, the earliest failure and threshold crossing (ps),
    the largest ratio."""
    rows = []
    for d in explorations:
        ratio = largest_ratio(d)
        fail_t, left_t = [], []
        for run, reason in enumerate(d["reasons"]):
            idx = np.flatnonzero(d["run"] == run)
            if is_failure(reason):
                fail_t.append(d["time_ps"][idx[-1]])
            above = idx[ratio[idx] > 1.0]
            if above.size:
                left_t.append(d["time_ps"][above[0]])
        rows.append(
            {
                "temperature_K": d["temperature_K"],
                "runs": len(d["reasons"]),
                "failed": len(fail_t),
                "first_failure_ps": min(fail_t, default=np.nan),
                "first_left_data_ps": min(left_t, default=np.nan),
                "largest_ratio": float(ratio.max()),
            }
        )
    return rows


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
