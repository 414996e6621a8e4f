"""Does a σ search on a nested subset pick the σ that the search on all geometries picks?

Reads a finished run (its config and results) and checks every trained part, or the ones
named, with the run's own data, splits and training settings:

* a part whose σ the run searched on all M training geometries: the same search is run on
  a nested random subset of ``--subset`` geometries (as ``training.sigma_subset`` would),
  and its σ is compared with the run's;
* a part whose σ the run searched on a subset (``training.sigma_subset``) and refitted:
  the chosen σ's neighbours on the subset's grid are fitted on all M geometries. If the
  refit has the lowest validation force MAE (the search's criterion) of the three, the full
  search, whose validation error along the grid is unimodal in every run so far, would
  choose it too.

Prints one row per σ fit (validation errors in kcal/mol/Å) and one verdict per part.

Usage:
  python benchmarks/bench_sigma_subset.py CONFIG [SYSTEM [PART ...]] [--subset 200]
e.g. python benchmarks/bench_sigma_subset.py workflow/configs/paper_sizes.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from deltagdml.data.splits import load_splits, train_indices
from deltagdml.gdml.dataset import load_dataset
from deltagdml.gdml.selection import CRITERION, select_sigma_configured
from deltagdml.workflow.config import training_settings
from deltagdml.workflow.steps.train import read_symmetries


def check_part(config: dict, root: Path, system: str, part: str, subset: int) -> bool | None:
    """Print the check of one part; True if both searches agree on σ (None: not checked)."""
    results = root / config["results"] / system
    ds = load_dataset(results / "datasets" / f"{part}.npz")
    splits = load_splits(results / "splits.npz", ds.n_geometries)
    train, valid = ds.subset(train_indices(splits, part)), ds.subset(splits["valid"])
    scores = pd.read_csv(results / "models" / f"{part}_sigma_scores.csv")
    chosen = float(scores.loc[scores["selected"], "sigma"].iloc[0])
    settings = training_settings(config, system, part)
    perms = read_symmetries(settings.symmetries, str(root))
    on_subset = scores["stage"].str.startswith("subset_")
    if on_subset.any():  # the run searched on a subset: neighbours of its σ on all M
        grid = sorted(set(scores.loc[on_subset, "sigma"]))
        i = grid.index(chosen)
        sigmas = [grid[j] for j in (i - 1, i + 1) if 0 <= j < len(grid)]
        settings = dataclasses.replace(
            settings, sigmas=tuple(sigmas), sigma_subset=None, extend_sigmas=False, patience=99
        )
        what = f"neighbours of σ={chosen:g} on all {train.n_geometries}"
        rows = scores[scores["stage"] == "refit"].assign(M=train.n_geometries)
    elif train.n_geometries <= subset:
        print(f"\n{system}/{part}: M = {train.n_geometries} ≤ --subset {subset}, nothing to check")
        return None
    else:  # the run searched on all M: the same search on a nested subset
        settings = dataclasses.replace(settings, sigma_subset=subset)
        what = f"search on {subset} of {train.n_geometries}, refit"
        rows = scores.assign(M=train.n_geometries)
    t0 = time.perf_counter()
    model, found = select_sigma_configured(train, valid, settings, perms)
    seconds = time.perf_counter() - t0
    new = pd.DataFrame([s.as_dict() for s in found])
    new["M"] = np.where(new["stage"].str.startswith("subset_"), subset, train.n_geometries)
    table = pd.concat([rows.assign(source="run"), new.assign(source="check")])
    table = table[["source", "stage", "M", "sigma", "f_rmse_kcal_mol_A", "f_mae_kcal_mol_A"]]
    # the search's criterion (validation force MAE) of each σ fitted on all M geometries
    full = table[table["M"] == train.n_geometries].groupby("sigma")[CRITERION].min()
    other = float(full.idxmin()) if on_subset.any() else model.sigma
    print(f"\n{system}/{part}: {what} ({seconds:.0f} s)")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    agree = other == chosen
    verdict = "same" if agree else "DIFFERENT"
    if not agree and {chosen, other} <= set(full.index):
        worse = 100 * (max(full[chosen], full[other]) / min(full[chosen], full[other]) - 1)
        verdict += f", validation force MAE on all {train.n_geometries} differs by {worse:.2g} %"
    print(f"run σ = {chosen:g}, check σ = {other:g}: {verdict}")
    return agree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="the run's config file")
    parser.add_argument("system", nargs="?", help="one system (default: all)")
    parser.add_argument("parts", nargs="*", help="its parts (default: all trained)")
    parser.add_argument("--subset", type=int, default=200, help="subset size (geometries)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the workflow directory")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    systems = [args.system] if args.system else list(config["systems"])
    verdicts = []
    for system in systems:
        models = args.root / config["results"] / system / "models"
        parts = args.parts or sorted(
            p.name.removesuffix("_sigma_scores.csv") for p in models.glob("*_sigma_scores.csv")
        )
        for part in parts:
            verdicts.append(
                (system, part, check_part(config, args.root, system, part, args.subset))
            )
    print("\nsystem/part: subset σ = full σ")
    for system, part, agree in verdicts:
        print(f"  {system}/{part}: {'not checked' if agree is None else 'yes' if agree else 'NO'}")


if __name__ == "__main__":
    main()
