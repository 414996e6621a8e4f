"""The Δ-sGDML paper's numbers that a run of this pipeline is compared with.

The paper labels its data at another level of theory, so its absolute errors are not
comparable with GFN2-xTB labels; what carries over is the relative change of the test
force MAE from the full to the Δ model, at the paper's training-set size.
"""

from __future__ import annotations

import pandas as pd

#: Per built-in system (preset name): the paper's training-set size and its change of the
#: test force MAE from the full to the Δ model (%); Na⁺–benzene and C60@buckycatcher are
#: stated as "about" in the paper.
PAPER_FORCE_MAE_CHANGE: dict[str, tuple[int, float]] = {
    "methane_dimer": (200, -51.2),
    "benzene_dimer": (1000, -71.5),
    "water_benzene": (1000, -56.0),
    "na_benzene": (1000, -26.0),
    "c60_buckycatcher": (100, -24.0),
}
COLUMNS = (
    "system",
    "preset",
    "n_train",
    "n_train_paper",
    "f_mae_change_pct",
    "f_mae_change_pct_paper",
    "difference_pct_points",
)


def paper_comparison(
    comparison: pd.DataFrame, metrics: pd.DataFrame, presets: dict[str, str | None]
) -> pd.DataFrame:
    """This run's force-MAE change (``comparison``: one row per system) beside the paper's,
    for the systems built on a preset the paper studied; ``n_train`` is the full model's
    training-set size (``metrics``)."""
    rows = []
    full = metrics[metrics["model"] == "full"].set_index("system")
    for _, row in comparison.iterrows():
        preset = presets.get(row["system"])
        if preset not in PAPER_FORCE_MAE_CHANGE:
            continue
        n_paper, change_paper = PAPER_FORCE_MAE_CHANGE[preset]
        change = float(row["f_mae_change_pct"])
        rows.append(
            (
                row["system"],
                preset,
                int(full.loc[row["system"], "n_train"]),
                n_paper,
                change,
                change_paper,
                change - change_paper,
            )
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def paper_markdown(table: pd.DataFrame) -> list[str]:
    """Markdown lines of :func:`paper_comparison` for the summary."""
    if table.empty:
        return []
    lines = [
        "",
        "Against the Δ-sGDML paper (change of the test force MAE, full → Δ; the paper's "
        "labels are at another level of theory, so only the relative change compares):",
        "",
        "| system | n_train | paper n_train | change | paper change | run − paper |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        same = "" if r["n_train"] == r["n_train_paper"] else " (not the paper's size)"
        lines.append(
            f"| {r['system']} | {r['n_train']}{same} | {r['n_train_paper']} | "
            f"{r['f_mae_change_pct']:+.1f} % | {r['f_mae_change_pct_paper']:+.1f} % | "
            f"{r['difference_pct_points']:+.1f} points |"
        )
    return lines
