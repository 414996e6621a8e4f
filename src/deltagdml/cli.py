"""Command line: ``deltagdml train|test|predict`` on sGDML-format datasets.

Energies in kcal/mol, forces in kcal/mol/Å, lengths in Å (sGDML's units).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .atomic_io import save_npz_atomic
from .dataset import Dataset, load_dataset
from .errors import DeltaGDMLError
from .metrics import error_summary
from .model_io import load_model, save_model
from .sampling import stratified_sample, train_valid_test_split
from .selection import select_sigma

log = logging.getLogger("deltagdml")


def _perms_arg(value: str) -> str | np.ndarray:
    if value in ("auto", "none"):
        return value
    return np.load(value, allow_pickle=False)


def cmd_train(args: argparse.Namespace) -> None:
    ds = load_dataset(args.dataset)
    if args.splits:
        with np.load(args.splits, allow_pickle=False) as s:
            idx_train, idx_valid = s["idxs_train"], s["idxs_valid"]
    else:
        split = train_valid_test_split(ds.E, args.n_train, args.n_valid, 0, args.seed)
        idx_train, idx_valid = split["train"], split["valid"]
    train, valid = ds.subset(idx_train), ds.subset(idx_valid)
    log.info(
        "training on %d geometries of %s (%d atoms), validating on %d",
        len(idx_train),
        args.dataset,
        ds.n_atoms,
        len(idx_valid),
    )
    model, scores = select_sigma(
        train.R,
        ds.z,
        train.F,
        train.E,
        valid.R,
        valid.F,
        valid.E,
        sigmas=args.sigmas,
        lam=args.lam,
        perms=_perms_arg(args.perms),
    )
    save_model(
        model,
        args.output,
        idxs_train=idx_train,
        idxs_valid=idx_valid,
        md5_train=ds.md5(),
        md5_valid=ds.md5(),
        dataset_name=ds.name,
        dataset_theory=ds.theory,
    )
    log.info("best σ = %g; model written to %s", model.sigma, args.output)
    if args.scores:
        Path(args.scores).write_text(json.dumps([s.as_dict() for s in scores], indent=2))


def _test_indices(ds: Dataset, args: argparse.Namespace) -> np.ndarray:
    if args.splits:
        with np.load(args.splits, allow_pickle=False) as s:
            return s["idxs_test"]
    if args.n_test:
        return stratified_sample(ds.E, args.n_test, np.random.default_rng(args.seed))
    return np.arange(ds.n_geometries)


def cmd_test(args: argparse.Namespace) -> None:
    model = load_model(args.model)
    ds = load_dataset(args.dataset)
    model.check_atoms(ds.z, args.dataset)
    test = ds.subset(_test_indices(ds, args))
    E, F = model.predict(test.R)
    err = error_summary(E, F, test.E, test.F)
    print(json.dumps({"n_test": test.n_geometries, **err}, indent=2))


def cmd_predict(args: argparse.Namespace) -> None:
    model = load_model(args.model)
    if args.geometries.endswith(".npz"):
        ds = load_dataset(args.geometries)
        z, R = ds.z, ds.R
    else:
        import ase.io

        frames = ase.io.read(args.geometries, index=":")
        z, R = frames[0].numbers, np.array([a.positions for a in frames])
    model.check_atoms(z, args.geometries)
    E, F = model.predict(R)
    save_npz_atomic(args.output, E=E, F=F, e_unit=np.array("kcal/mol"), r_unit=np.array("Ang"))
    log.info("predicted %d geometries → %s (kcal/mol, kcal/mol/Å)", len(E), args.output)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deltagdml", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an sGDML model with σ chosen on a validation set")
    t.add_argument("dataset")
    t.add_argument("-o", "--output", required=True, help="model .npz (sGDML layout)")
    t.add_argument("--n-train", type=int, default=200)
    t.add_argument("--n-valid", type=int, default=100)
    t.add_argument("--splits", help="npz with idxs_train/idxs_valid (overrides --n-*)")
    t.add_argument("--sigmas", type=float, nargs="+", default=[2, 5, 10, 20, 40, 80])
    t.add_argument("--lam", type=float, default=1e-10)
    t.add_argument("--perms", default="auto", help="auto, none, or a .npy (P, N) array")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--scores", help="write validation scores per σ to this JSON file")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("test", help="energy/force errors of a model on a dataset")
    e.add_argument("model")
    e.add_argument("dataset")
    e.add_argument("--splits", help="npz with idxs_test")
    e.add_argument("--n-test", type=int, default=0, help="stratified subset (0 = all)")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=cmd_test)
    r = sub.add_parser("predict", help="predict energies and forces for geometries")
    r.add_argument("model")
    r.add_argument("geometries", help="sGDML dataset .npz or any file ase.io reads")
    r.add_argument("-o", "--output", required=True)
    r.set_defaults(func=cmd_predict)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DeltaGDMLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
