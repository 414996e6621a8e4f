"""Training time and peak memory of every model of a finished pipeline run.

For each system and part the table gives the model (atoms, training geometries M,
permutations, solver, σ), its σ search (fits, how σ was searched, seconds spent in fits)
and the training job as Snakemake measured it (wall seconds, peak resident set), next to
the memory that :func:`~deltagdml.gdml.solvers.choice.estimate_memory` predicts. Given
several runs (e.g. the default one at M = 100 and the paper-size one), a second table gives
per model the scaling exponent of the selected σ's fit time with M: the slope of log(time)
against log(M), with the solvers used at each size.

Usage:
  python benchmarks/training_cost.py RESULTS_DIR [RESULTS_DIR ...] [--csv out.csv]
e.g. after the default run and `snakemake --cores 2 --configfile workflow/configs/paper_sizes.yaml`:
  python benchmarks/training_cost.py results results_paper_sizes
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from deltagdml.gdml.solvers.choice import estimate_memory


def model_row(results: Path, system: str, part: str) -> dict:
    """One trained model's size, σ search and the cost of its training job."""
    models = results / system / "models"
    with np.load(models / f"{part}.npz", allow_pickle=False) as npz:
        n_atoms, sigma = int(npz["z"].size), float(npz["sig"])
        M, P = int(npz["R_desc"].shape[1]), int(npz["perms"].shape[0])
        solver = str(npz["solver_name"]) if "solver_name" in npz.files else "analytic"
    scores = pd.read_csv(models / f"{part}_sigma_scores.csv")
    timing = pd.read_csv(models / f"{part}_timing.csv")  # same rows, same order
    stages = scores["stage"].str.replace(r"_.*", "", regex=True)
    selected = timing["selected"].astype(bool).to_numpy()
    job = pd.read_csv(results / "benchmarks" / system / f"train_{part}.tsv", sep="\t").iloc[0]
    return {
        "system": system,
        "part": part,
        "n_atoms": n_atoms,
        "M": M,
        "n_perms": P,
        "solver": solver,
        "sigma": sigma,
        "n_fits": len(scores),
        "search": "+".join(dict.fromkeys(stages)),
        "fits_s": round(float(timing["train_s"].sum()), 1),
        "selected_fit_s": round(float(timing.loc[selected, "train_s"].iloc[0]), 1),
        "job_wall_s": round(float(job["s"]), 1),
        "peak_rss_GB": round(float(job["max_rss"]) / 1024, 2),
        "estimate_GB": round(estimate_memory(M, n_atoms, P, solver, threads=2) / 2**30, 2),
    }


def scaling(table: pd.DataFrame) -> pd.DataFrame:
    """Slope of log(selected-σ fit time) against log(M) per system and part."""
    rows = []
    for (system, part), sub in table.groupby(["system", "part"], sort=False):
        if sub["M"].nunique() >= 2:
            slope = np.polyfit(np.log(sub["M"]), np.log(sub["selected_fit_s"]), 1)[0]
            rows.append(
                {
                    "system": system,
                    "part": part,
                    "M": "/".join(map(str, sub["M"])),
                    "solver": "/".join(sub["solver"]),
                    "fit_s": "/".join(map(str, sub["selected_fit_s"])),
                    "exponent": round(float(slope), 2),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="results directories of runs")
    parser.add_argument("--csv", type=Path, help="also write the table here")
    args = parser.parse_args()
    rows = []
    for results in args.results:
        scores = sorted(results.glob("*/models/*_sigma_scores.csv"))
        if not scores:
            raise SystemExit(f"{results}: no trained models (*/models/*_sigma_scores.csv)")
        for path in scores:
            part = path.name.removesuffix("_sigma_scores.csv")
            rows.append({"run": str(results), **model_row(results, path.parent.parent.name, part)})
    table = pd.DataFrame(rows).sort_values(["system", "part", "M"], kind="stable")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print("Training cost per model (times in s, memory in GB; fits_s: every σ fit)")
        print(table.to_string(index=False))
        exponents = scaling(table)
        if not exponents.empty:
            print("\nScaling exponent of the one-σ fit time with M")
            print(exponents.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
