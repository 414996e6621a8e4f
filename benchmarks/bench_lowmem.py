"""Wall time and peak memory of low-memory (iterative) training on the benzene dimer.

For each training-set size M, one σ is trained in a fresh subprocess (so that its peak
resident set is its own) and the child prints time, peak RSS, solver statistics and
test errors as JSON. Sizes up to ``--analytic-up-to`` are also trained with the dense
analytic solver for comparison. The parent prints a table and the scaling exponent of
the iterative training time, the slope of log(time) against log(M).

Usage:
  OMP_NUM_THREADS=2 python benchmarks/bench_lowmem.py [--sizes 200 500 1000]
      [--analytic-up-to 500] [--symmetries auto|none] [--sigma 20] [--max-memory-gb 16]
The GFN2-xTB dataset (1,600 frames of restrained 300 K Langevin MD, stride 10) is
generated once, single-threaded, and cached in benchmarks/out/.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from deltagdml.data.splits import train_valid_test_split
from deltagdml.gdml.dataset import Dataset, load_dataset, save_dataset
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.solvers.choice import estimate_memory
from deltagdml.gdml.solvers.nystrom import IterativeOptions

OUT = Path(__file__).parent / "out"
N_FRAMES = 1600
N_TEST = 500


def dataset_path(n_frames: int) -> Path:
    return OUT / f"benzene_dimer_gfn2_{n_frames}.npz"


def generate(n_frames: int) -> None:
    """GFN2-xTB Langevin MD of the benzene dimer at 300 K, labelled with GFN2-xTB."""
    from deltagdml.data.labelling import label_frames
    from deltagdml.data.sampling import sample_md
    from deltagdml.data.systems import DEFAULT_SYSTEMS, system_from_config

    system = system_from_config("benzene_dimer", DEFAULT_SYSTEMS["benzene_dimer"])
    t0 = time.perf_counter()
    traj = sample_md(
        system,
        None,
        300.0,
        0.5,
        n_frames,
        10,
        seed=0,
        equilibration_steps=200,
        restraint={"enabled": True, "k": 1.0},
    )
    labels = label_frames(system, traj["R"], None)
    print(f"generated {n_frames} GFN2-xTB frames in {time.perf_counter() - t0:.0f} s")
    ds = Dataset(
        R=traj["R"],
        z=traj["z"],
        F=labels["F"],
        E=labels["E"],
        name="benzene_dimer",
        theory="GFN2-xTB",
    )
    save_dataset(ds, dataset_path(n_frames))


def benzene_dimer_dataset(n_frames: int) -> Dataset:
    """The cached dataset, generated in a single-threaded subprocess if missing."""
    path = dataset_path(n_frames)
    if not path.exists():
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        subprocess.run([sys.executable, __file__, "--generate", str(n_frames)], env=env, check=True)
    return load_dataset(path)


def train_one(args: argparse.Namespace) -> dict:
    """Train one model of size ``args.child`` in this process; return its statistics."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    ds = load_dataset(dataset_path(args.n_frames))
    split = train_valid_test_split(ds.E, args.child, 1, N_TEST, seed=0)
    tr, te = ds.subset(split["train"]), ds.subset(split["test"])
    model = GDMLModel(
        sigma=args.sigma,
        perms=args.symmetries,
        solver=args.solver,
        max_memory_gb=args.max_memory_gb,
        iterative=IterativeOptions(tol=args.tol),
    )
    t0 = time.perf_counter()
    model.fit(tr.R, ds.z, tr.F, tr.E)
    train_s = time.perf_counter() - t0
    E, F = model.predict(te.R)
    return {
        "M": args.child,
        "P": len(model.perms_),
        "solver": model.solver_,
        "train_s": train_s,
        **{k: round(v, 2) for k, v in model.timings_.items()},
        **model.solver_info_,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "estimate_gb": estimate_memory(
            args.child,
            ds.n_atoms,
            len(model.perms_),
            model.solver_,
            model.solver_info_.get("n_inducing"),
        )
        / 2**30,
        "test_f_mae": float(np.abs(F - te.F).mean()),
        "test_e_mae": float(np.abs(E - te.E).mean()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 1000])
    p.add_argument("--analytic-up-to", type=int, default=500)
    p.add_argument("--symmetries", default="auto", choices=["auto", "none"])
    p.add_argument("--sigma", type=float, default=20.0)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--max-memory-gb", type=float, default=16.0)
    p.add_argument("--n-frames", type=int, default=N_FRAMES)
    p.add_argument("--generate", type=int, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--child", type=int, metavar="M", help=argparse.SUPPRESS)
    p.add_argument("--solver", default="iterative", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.generate:
        return generate(args.generate)
    if args.child:
        print(json.dumps(train_one(args)))
        return None
    benzene_dimer_dataset(args.n_frames)
    print(
        f"benzene dimer: σ={args.sigma:g}, symmetries={args.symmetries}, "
        f"tol={args.tol:g}, max memory {args.max_memory_gb:g} GB, "
        f"threads={os.environ.get('OMP_NUM_THREADS')}",
        flush=True,
    )
    rows = []
    for M in args.sizes:
        for solver in ("iterative", "analytic") if M <= args.analytic_up_to else ("iterative",):
            cmd = [sys.executable, __file__, *sys.argv[1:], "--child", str(M), "--solver", solver]
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(
        f"{'M':>6} {'P':>4} {'solver':>9} {'train s':>9} {'iters':>6} {'peak GB':>8} "
        f"{'est. GB':>8} {'F MAE':>7} {'E MAE':>7}"
    )
    for r in rows:
        print(
            f"{r['M']:>6} {r['P']:>4} {r['solver']:>9} {r['train_s']:>9.1f} "
            f"{r.get('iterations', 0):>6} {r['peak_gb']:>8.2f} {r['estimate_gb']:>8.2f} "
            f"{r['test_f_mae']:>7.4f} {r['test_e_mae']:>7.4f}"
        )
    iterative = [r for r in rows if r["solver"] == "iterative"]
    if len(iterative) > 1:
        M, t = ([r[k] for r in iterative] for k in ("M", "train_s"))
        slope = np.polyfit(np.log(M), np.log(t), 1)[0]
        print(f"scaling exponent of iterative training time in M: {slope:.2f}")


if __name__ == "__main__":
    main()
