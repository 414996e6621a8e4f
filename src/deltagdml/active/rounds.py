"""Whether another round is needed, and what each round did.

Units: ps, K, kcal/mol, kcal/mol/Å; ratios are dimensionless.
"""

from __future__ import annotations

import numpy as np

from deltagdml.active.explore import is_failure, largest_ratio


def decision(explorations: list[dict], n_selected: int, accept_ratio: float = 1.0) -> dict:
    """Whether the loop goes on after a round's exploration: it stops when every run stayed
    stable and every part under ``accept_ratio`` × its threshold (converged), or when there
    is nothing new to label (stalled)."""
    ratios = [largest_ratio(d) for d in explorations]
    largest = float(max(r.max() for r in ratios))
    failed = sum(
        bool(r) and not r.startswith("uncertainty") for d in explorations for r in d["reasons"]
    )
    converged = failed == 0 and largest <= accept_ratio
    if converged:
        why = f"every run stayed stable and under {accept_ratio:g} × the thresholds"
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
