"""σ-search strategies against the plain grid, on water–benzene (GFN2-xTB MD).

Prints, per strategy: the σ chosen, the number of fits, the wall time and the validation
force RMSE, for
  * the dense solver at M = ``--n-train`` (default 200): the plain grid {2 … 80} with
    patience 2 (the pipeline's search before the σ-search issue), the grid followed past a
    best edge (default), coarse-to-fine, and both on a nested subset of M/2 geometries with
    one refit at M;
  * the iterative solver at M = ``--n-iterative`` (default 400): the grid without and with
    CG warm starts from the nearest σ's coefficients (CG iterations summed over σ),
    coarse-to-fine, and the grid on M/2 with one refit.

Usage:  OMP_NUM_THREADS=2 python benchmarks/bench_sigma_search.py [--n-train 200]
The dataset is the kernel benchmark's (benchmarks/out/, generated once if missing).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from bench_kernel import water_benzene_dataset

from deltagdml.data.splits import train_valid_test_split
from deltagdml.gdml.selection import select_sigma
from deltagdml.gdml.solvers.nystrom import IterativeOptions

GRID = [2, 5, 10, 20, 40, 80]


class Iterations(logging.Handler):
    """Counts CG iterations from the solver's log."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("CG converged in "):
            self.total += int(message.split()[3])


def run(label: str, train, valid, z, **kwargs) -> None:
    counter = Iterations()
    logging.getLogger("deltagdml").addHandler(counter)
    logging.getLogger("deltagdml").setLevel(logging.INFO)
    t0 = time.perf_counter()
    best, scores = select_sigma(
        train.R, z, train.F, train.E, valid.R, valid.F, valid.E, sigmas=GRID, **kwargs
    )
    wall = time.perf_counter() - t0
    logging.getLogger("deltagdml").removeHandler(counter)
    rmse = min(s.f_rmse for s in scores)
    stages = ",".join(f"{s.sigma:g}:{s.stage[0]}" for s in scores)
    iterations = f"{counter.total:6d}" if counter.total else "     –"
    print(
        f"{label:34s} σ={best.sigma:<6g} fits {len(scores):2d}  {wall:7.1f} s  "
        f"CG its {iterations}  RMSE {rmse:.4f}  [{stages}]",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--n-iterative", type=int, default=400)
    p.add_argument("--n-frames", type=int, default=1000)
    args = p.parse_args()
    ds = water_benzene_dataset(args.n_frames)
    z = ds.z
    threads = os.environ.get("OMP_NUM_THREADS")
    print(f"water–benzene: N={ds.n_atoms}, grid {GRID}, threads={threads}")
    print("columns: strategy, σ chosen, fits, wall time, CG iterations, best validation RMSE")
    for M, solver in ((args.n_train, "analytic"), (args.n_iterative, "iterative")):
        split = train_valid_test_split(ds.E, M, 200, 0, seed=0)
        train, valid = ds.subset(split["train"]), ds.subset(split["valid"])
        print(f"-- M = {M}, {solver} solver")
        common = {"solver": solver, "iterative": IterativeOptions(tol=1e-4)}
        fast = {"search": "coarse_to_fine", **common}
        half = {"subset": M // 2, **common}
        if solver == "analytic":
            run("plain grid (patience 2)", train, valid, z, extend=False, **common)
            run("grid + edge extension (default)", train, valid, z, **common)
            run("coarse_to_fine + edge extension", train, valid, z, **fast)
            run(f"grid on {M // 2}, refit at {M}", train, valid, z, **half)
            run(
                f"coarse_to_fine on {M // 2}, refit", train, valid, z, **half, search=fast["search"]
            )
        else:
            run("grid, CG from zero (default)", train, valid, z, **common)
            run("grid, CG warm start", train, valid, z, warm_start=True, **common)
            run("coarse_to_fine, CG from zero", train, valid, z, **fast)
            run(f"grid on {M // 2}, refit at {M}", train, valid, z, **half)


if __name__ == "__main__":
    main()
