"""Do permutational symmetries pay for one model? Accuracy against training and MD cost.

Trains one sGDML model of a dataset with its symmetry group ("auto") and without ("none")
on the same training, validation and test geometries, and prints test errors, training
time and single-geometry prediction speed (what MD pays per step). Example, the C60
fragment of the C60@buckycatcher run (120 permutations):

    OMP_NUM_THREADS=2 python benchmarks/bench_symmetries.py \\
        results_c60/c60_buckycatcher/datasets/fragment_0.npz --n-train 40 --sigmas 40 80 160
"""

from __future__ import annotations

import argparse
import time

from deltagdml.data.splits import make_splits
from deltagdml.gdml.dataset import load_dataset
from deltagdml.gdml.metrics import E_MAE, F_MAE, F_RMSE, error_summary
from deltagdml.gdml.selection import select_sigma


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("--n-train", type=int, default=40)
    p.add_argument("--n-valid", type=int, default=30)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--sigmas", type=float, nargs="+", default=[40, 80, 160])
    p.add_argument("--max-perms", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    ds = load_dataset(args.dataset)
    split = make_splits(ds.E, args.n_train, args.n_valid, args.n_test, args.seed)
    tr, va, te = (ds.subset(split[k]) for k in ("train", "valid", "test"))
    print(f"{args.dataset}: {ds.n_atoms} atoms, n_train {args.n_train}, test {te.n_geometries}")
    print("perms   P   sigma  train_s  f_mae    f_rmse   e_mae    predict/s (one geometry)")
    for perms in ("none", "auto"):
        t0 = time.perf_counter()
        model, _ = select_sigma(
            tr.R, ds.z, tr.F, tr.E, va.R, va.F, va.E,
            sigmas=args.sigmas, perms=perms, max_perms=args.max_perms, patience=1,
        )  # fmt: skip
        train_s = time.perf_counter() - t0
        err = error_summary(*model.predict(te.R), te.E, te.F)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 3.0:
            model.predict(te.R[n % te.n_geometries])
            n += 1
        rate = n / (time.perf_counter() - t0)
        print(
            f"{perms:5s} {len(model.perms_):4d} {model.sigma:6g} {train_s:8.1f} "
            f"{err[F_MAE]:8.4f} {err[F_RMSE]:8.4f} {err[E_MAE]:8.4f} {rate:10.1f}"
        )
    print("errors: kcal/mol/Å (forces), kcal/mol (energies)")


if __name__ == "__main__":
    main()
