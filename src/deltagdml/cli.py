"""Command line: train, test and use sGDML and Δ-sGDML force fields.

Datasets and models use kcal/mol, kcal/mol/Å and Å (sGDML's units); files written for
ASE (extended XYZ, .traj) use eV and eV/Å. Exit codes: 0 success, 1 an error explained
in one line, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from ase import Atoms

from deltagdml.atomic_io import atomic_path, live_text, save_npz_atomic
from deltagdml.data.calculators import calculator_label, check_calculator_spec, set_single_thread
from deltagdml.data.delta import build_delta_datasets
from deltagdml.data.frames import ase_format, write_frames
from deltagdml.data.ingest import ingest_dataset
from deltagdml.data.splits import (
    load_splits,
    make_splits,
    stratified_sample,
    train_valid_test_split,
)
from deltagdml.data.systems import System, model_parts, system_from_config
from deltagdml.dynamics.ipi import (
    DEFAULT_ORDER_TOLERANCE,
    DEFAULT_TIMEOUT,
    IPIClient,
    UncertaintyLog,
)
from deltagdml.errors import DatasetError, DeltaGDMLError
from deltagdml.gdml.calculator import GDMLCalculator
from deltagdml.gdml.composite import DeltaModel
from deltagdml.gdml.dataset import Dataset, load_dataset
from deltagdml.gdml.delta_io import TrainingRecord, extract_part, load_model, save_delta_model
from deltagdml.gdml.metrics import error_summary
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import save_model, training_hashes
from deltagdml.gdml.selection import SEARCHES, select_sigma_configured
from deltagdml.settings import (
    CalculatorSettings,
    DynamicsSettings,
    StabilitySettings,
    TrainingSettings,
)
from deltagdml.version import __version__

log = logging.getLogger(__name__)
Model = GDMLModel | DeltaModel


class CLIError(DeltaGDMLError):
    """A bad option value or path given on the command line."""


# -- checks at the door ---------------------------------------------------------------------
Files = Mapping[str, str | Sequence[str] | None]


def _named(files: Files) -> list[tuple[str, str]]:
    """(option, path) of every file given; a list option gives one pair per file."""
    pairs = []
    for option, value in files.items():
        paths = [value] if isinstance(value, str) else value or []
        pairs += [(option, path) for path in paths if path]
    return pairs


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: the same real path, or (if both exist) the same
    device and inode, as through a hard link."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _outputs_ok(inputs: Files, outputs: Files) -> None:
    """Refuse an output that is an input or another output, that exists but is no regular
    file (a directory, device or pipe), or that cannot be written. ``inputs`` and
    ``outputs`` map each option (or argument name) to its file(s)."""
    given, written = _named(inputs), _named(outputs)
    for k, (option, out) in enumerate(written):
        for name, path in given:
            if _same_file(out, path):
                raise CLIError(f"{option} {out}: output would overwrite an input file ({name})")
        for name, path in written[:k]:
            if _same_file(out, path):
                raise CLIError(f"{option} {out}: the same file as {name} {path}; one would be lost")
        if os.path.exists(out) and not os.path.isfile(out):
            raise CLIError(
                f"{option} {out}: exists and is not a regular file (a directory, device or "
                "pipe); give a file or a new path"
            )
        parent = Path(out).resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise CLIError(f"{option} {out}: cannot write here ({parent} is not a writable folder)")


def _read_geometries(path: str, z_expected: np.ndarray, ignore_pbc: bool = False) -> np.ndarray:
    """Geometries (M, N, 3) Å of a dataset .npz or any ase.io file, every frame checked.

    Both paths apply the same geometry checks (distances, length units, real numbers, no
    periodic cell unless ``ignore_pbc``).
    """
    if path.endswith(".npz"):
        ds = load_dataset(path, ignore_pbc=ignore_pbc)
        z, R = ds.z, ds.R
    else:
        import ase.io

        from deltagdml.data.frames import frame_geometries

        try:
            frames = ase.io.read(path, index=":")
        except FileNotFoundError:
            raise CLIError(f"{path}: file not found") from None
        except Exception as exc:  # ase.io raises many types for unreadable files
            raise CLIError(f"{path}: cannot read geometries ({exc})") from None
        if not frames:
            raise CLIError(f"{path}: no geometries")
        for i, atoms in enumerate(frames):
            if not np.array_equal(atoms.numbers, z_expected):
                raise DatasetError(
                    f"{path}: frame {i} has atoms {atoms.get_chemical_formula()} in another "
                    f"order or number than the model ({len(z_expected)} atoms)"
                )
        z, R = frame_geometries(frames, path, ignore_pbc=ignore_pbc)
    if not np.array_equal(z, z_expected):
        raise DatasetError(f"{path}: the geometries hold other atoms than the model")
    return R


def _calculator(value: str | None) -> CalculatorSettings | None:
    """The calculator named ``tblite``, ``gfnff`` or ``module:Class``."""
    if value is None:
        return None
    spec = {"name": value} if value in ("tblite", "gfnff") else {"name": "ase", "class": value}
    check_calculator_spec(spec, "--calculator")
    return CalculatorSettings.from_config(spec)


def _system(ds: Dataset, args: argparse.Namespace) -> System:
    """The complex of a dataset (first geometry) with the fragments given on the command line."""
    cfg: dict = {
        "structure": Atoms(ds.z, positions=ds.R[0]),
        "fragments": "connectivity" if args.fragments == ["connectivity"] else args.fragments,
    }
    if args.charges:
        cfg["charges"] = args.charges
    if args.multiplicities:
        cfg["multiplicities"] = args.multiplicities
    return system_from_config(Path(args.dataset).stem, cfg)


# -- commands -------------------------------------------------------------------------------
def _settings(args: argparse.Namespace) -> TrainingSettings:
    return TrainingSettings(
        sigmas=tuple(args.sigmas),
        sigma_search=args.sigma_search,
        extend_sigmas=args.extend_sigmas,
        lam=args.lam,
        symmetries=args.perms,
        patience=args.patience,
    )


def _perms_file(value: str) -> str | None:
    """The file named by ``--perms``; None for 'auto' and 'none'."""
    return None if value in ("auto", "none") else value


def _perms(value: str) -> str | np.ndarray:
    if value in ("auto", "none"):
        return value
    try:
        perms = np.load(value, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CLIError(f"--perms {value}: not a readable .npy array ({exc})") from None
    if perms.ndim != 2 or not np.issubdtype(perms.dtype, np.integer):
        raise CLIError(f"--perms {value}: expected an integer (P, N) array, got {perms.shape}")
    return perms


def cmd_train(args: argparse.Namespace) -> None:
    _outputs_ok(
        {"dataset": args.dataset, "--splits": args.splits, "--perms": _perms_file(args.perms)},
        {"-o": args.output, "--scores": args.scores},
    )
    perms = _perms(args.perms)
    ds = load_dataset(args.dataset, ignore_pbc=args.ignore_pbc)
    if args.splits:
        split = load_splits(args.splits, ds.n_geometries)
    else:
        split = train_valid_test_split(
            ds.E, args.n_train, args.n_valid, 0, args.seed, n_geometries=ds.n_geometries
        )
    log.info(
        "training on %d geometries of %s (%d atoms), validating on %d",
        len(split["train"]),
        args.dataset,
        ds.n_atoms,
        len(split["valid"]),
    )
    settings = _settings(args)
    model, scores = select_sigma_configured(
        ds.subset(split["train"]), ds.subset(split["valid"]), settings, perms
    )
    save_model(
        model,
        args.output,
        idxs_train=split["train"],
        idxs_valid=split["valid"],
        md5_train=ds.md5(),
        md5_valid=ds.md5(),
        dataset_name=ds.name,
        dataset_theory=ds.theory,
        **training_hashes(ds.R, ds.z, split["train"], split["valid"]),
    )
    log.info("best σ = %g; model written to %s", model.sigma, args.output)
    if args.scores:
        with atomic_path(args.scores) as tmp:
            Path(tmp).write_text(json.dumps([s.as_dict() for s in scores], indent=2))


def cmd_train_delta(args: argparse.Namespace) -> None:
    labels_in = args.fragment_labels or []
    _outputs_ok(
        {
            "dataset": args.dataset,
            "--fragment-labels": labels_in,
            "--perms": _perms_file(args.perms),
        },
        {"-o": args.output, "--full-model": args.full_model},
    )
    if labels_in and args.calculator:
        raise CLIError(
            f"--calculator {args.calculator}: not used with --fragment-labels (the labels "
            "come from those files); give one of them"
        )
    perms = _perms(args.perms)
    spec = _calculator(args.calculator)
    if not labels_in and spec is None:
        raise CLIError("give --fragment-labels (one file per fragment) or --calculator")
    ds = (
        load_dataset(args.dataset, ignore_pbc=args.ignore_pbc)
        if args.dataset.endswith(".npz")
        else None
    )
    if ds is None:
        from deltagdml.data.ingest import read_labelled_geometries

        R, z, E, F = read_labelled_geometries(args.dataset, ignore_pbc=args.ignore_pbc)
        ds = Dataset(R=R, z=z, F=F, E=E, name=Path(args.dataset).stem)
    system = _system(ds, args)
    set_single_thread()
    labels = ingest_dataset(
        args.dataset,
        system,
        fragment_files=labels_in or None,
        calculator=None if labels_in else spec,
        progress=log.info,
        ignore_pbc=args.ignore_pbc,
    )
    theory = ds.theory if labels_in else calculator_label(spec)
    datasets = build_delta_datasets(system, labels, theory)
    full = datasets["full"]
    split = make_splits(
        full.E, args.n_train, args.n_valid, 0, args.seed, n_geometries=full.n_geometries
    )
    settings = _settings(args)
    parts = [p for p in model_parts(system) if p != "full" or args.full_model]
    models, info = {}, {}
    for part in parts:
        d = datasets[part]
        log.info("training %s (%d atoms)", part, d.n_atoms)
        models[part], _ = select_sigma_configured(
            d.subset(split["train"]), d.subset(split["valid"]), settings, perms
        )
        info[part] = {
            "md5_train": d.md5(),
            "md5_valid": d.md5(),
            **training_hashes(d.R, d.z, split["train"], split["valid"]),
        }
    binding = datasets["binding"].extra
    constants = dict(
        zip(
            binding["constant_fragments"].tolist(),
            binding["constant_energies"].tolist(),
            strict=True,
        )
    )
    learned = {p: m for p, m in models.items() if p != "full"}
    delta = DeltaModel.from_parts(system.z, system.fragments, learned, constants)
    record = TrainingRecord(
        md5=datasets["full"].md5(),
        idxs_train=split["train"].tolist(),
        idxs_valid=split["valid"].tolist(),
        **training_hashes(full.R, full.z, split["train"], split["valid"]),
    )
    save_delta_model(delta, args.output, part_info=info, record=record, theory=theory)
    log.info("Δ model (%s) written to %s", ", ".join(learned), args.output)
    if args.full_model:
        save_model(
            models["full"],
            args.full_model,
            idxs_train=split["train"],
            idxs_valid=split["valid"],
            md5_train=record.md5,
            md5_valid=record.md5,
            dataset_theory=theory,
            geometry_hashes_train=record.geometry_hashes_train,
            geometry_hashes_valid=record.geometry_hashes_valid,
        )
        log.info("full model written to %s", args.full_model)


def cmd_test(args: argparse.Namespace) -> None:
    model = load_model(args.model)
    ds = load_dataset(args.dataset, ignore_pbc=args.ignore_pbc)
    model.check_atoms(ds.z, args.dataset)
    if args.splits:
        idx = load_splits(args.splits, ds.n_geometries)["test"]
    else:
        idx = np.arange(ds.n_geometries)
    n_left_out = 0
    if not args.include_training:
        training = model.training_
        if not training.by_content:
            log.warning(
                "%s: the model records no content hashes of its geometries (a file from sGDML "
                "or an older version): training/validation geometries are recognised only in "
                "the dataset it was trained on (by md5), not in any other",
                args.model,
            )
        used = training.used_mask(ds)[idx]
        n_left_out = int(used.sum())
        if idx.size and n_left_out == idx.size:
            raise CLIError(
                f"{args.dataset}: all {idx.size} geometries are the model's training or "
                "validation geometries; nothing to test on (--include-training tests them)"
            )
        idx = idx[~used]
        log.info("left out %d training/validation geometries of the model", n_left_out)
    if not args.splits and args.n_test and args.n_test < idx.size:
        E = None if ds.E is None else ds.E[idx]
        rng = np.random.default_rng(args.seed)
        idx = idx[stratified_sample(E, args.n_test, rng, n_geometries=idx.size)]
    if idx.size == 0:
        raise CLIError(f"{args.dataset}: no geometries left to test on")
    test = ds.subset(idx)
    E, F = model.predict(test.R)
    err = error_summary(E, F, test.E, test.F)
    units = {"e_unit": "kcal/mol", "f_unit": "kcal/mol/Ang"}
    summary = {"n_test": test.n_geometries, "n_left_out": n_left_out, **err, **units}
    print(json.dumps(summary, indent=2))


def cmd_predict(args: argparse.Namespace) -> None:
    _outputs_ok({"model": args.model, "geometries": args.geometries}, {"-o": args.output})
    if not args.output.endswith(".npz"):
        ase_format(args.output)
    model = load_model(args.model)
    R = _read_geometries(args.geometries, model.z_, args.ignore_pbc)
    E, F = model.predict(R)
    if not (np.all(np.isfinite(E)) and np.all(np.isfinite(F))):
        raise DatasetError(f"{args.model}: predictions are not finite")
    if args.output.endswith(".npz"):
        save_npz_atomic(args.output, E=E, F=F, e_unit=np.array("kcal/mol"), r_unit=np.array("Ang"))
    else:
        write_frames(args.output, model.z_, R, E, F)
    log.info("predicted %d geometries → %s", len(E), args.output)


def _fragments_of(model: Model, start: Atoms) -> list[np.ndarray]:
    if isinstance(model, DeltaModel):
        return [f.atoms for f in model.fragments]
    from deltagdml.data.systems import connectivity_fragments

    return connectivity_fragments(start)


def cmd_md(args: argparse.Namespace) -> None:
    from deltagdml.dynamics.run import MDCalculator, run_md

    _outputs_ok({"model": args.model, "start": args.start}, {"-o": args.output})
    if args.max_uncertainty_ratio is not None and args.max_uncertainty_ratio <= 0:
        raise CLIError(f"--max-uncertainty-ratio {args.max_uncertainty_ratio}: must be > 0")
    ase_format(args.output)
    model = load_model(args.model)
    start = Atoms(model.z_, positions=_read_geometries(args.start, model.z_, args.ignore_pbc)[0])
    fragments = _fragments_of(model, start)
    result = run_md(
        start,
        MDCalculator(model),
        fragments,
        args.temperature,
        args.timestep,
        args.steps,
        args.stride,
        args.friction,
        args.seed,
        StabilitySettings(max_uncertainty_ratio=args.max_uncertainty_ratio),
        progress=lambda line: print(f"md: {line}", file=sys.stderr, flush=True),
    )
    E, F = model.predict(result.R)
    write_frames(args.output, model.z_, result.R, E, F, info=result.frame_info())
    left = result.left_data_time_ps
    print(
        json.dumps(
            {
                "status": "unstable" if result.reason else "stable",
                "reason": result.reason,
                "simulated_ps": float(result.time_ps[-1]),
                "steps": result.steps_done,
                "steps_per_s": round(result.steps_per_s, 1),
                "frames": len(result.R),
                "left_data_time_ps": None if np.isnan(left) else left,
                "trajectory": args.output,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


def cmd_ipi(args: argparse.Namespace) -> None:
    if args.uncertainty_stride < 1:
        raise CLIError(f"--uncertainty-stride {args.uncertainty_stride}: must be ≥ 1")
    log_file = args.uncertainty_log
    _outputs_ok(
        {"model": args.model, "start": args.start},
        {"--uncertainty-log": [log_file, f"{log_file}.partial"] if log_file else None},
    )
    client = IPIClient(args.address, args.unix, args.timeout, args.order_tolerance)
    model = load_model(args.model)
    atoms = Atoms(model.z_, positions=_read_geometries(args.start, model.z_, args.ignore_pbc)[0])
    log.info("serving %s to the %s", args.model, client.server)
    # the log is written line by line as the server runs, to LOG.partial until it ends
    with live_text(log_file) if log_file else nullcontext() as lines:
        atoms.calc = (
            GDMLCalculator(model)
            if lines is None
            else UncertaintyLog(model, lines, args.uncertainty_stride)
        )
        client.run(atoms)


def cmd_extract(args: argparse.Namespace) -> None:
    _outputs_ok({"model": args.model}, {"-o": args.output})
    extract_part(args.model, args.part, args.output)
    log.info("%s of %s → %s (sGDML model layout)", args.part, args.model, args.output)


# -- parser ---------------------------------------------------------------------------------
def _number(
    kind: type[int] | type[float], minimum: float, *, strict: bool = False
) -> Callable[[str], int | float]:
    """argparse type: a finite ``kind`` ≥ ``minimum`` (> if ``strict``); argparse names
    the option in its usage error."""
    bound = f"{'>' if strict else '≥'} {minimum:g}"
    what = "an integer" if kind is int else "a number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not {what}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"{text}: must be {bound}")
        return value

    return parse


def _training_options(p: argparse.ArgumentParser) -> None:
    d = TrainingSettings()
    count = _number(int, 1)
    p.add_argument("--n-train", type=count, default=d.n_train, help="training geometries")
    p.add_argument("--n-valid", type=count, default=d.n_valid, help="validation (σ choice)")
    p.add_argument(
        "--sigmas",
        type=_number(float, 0, strict=True),
        nargs="+",
        default=list(d.sigmas),
        help="σ grid",
    )
    p.add_argument("--sigma-search", choices=SEARCHES, default=d.sigma_search)
    p.add_argument(
        "--no-extend-sigmas",
        dest="extend_sigmas",
        action="store_false",
        help="do not follow a best σ at the end of the grid outwards",
    )
    p.add_argument("--lam", type=_number(float, 0), default=d.lam, help="regularisation")
    p.add_argument("--patience", type=count, default=d.patience, help="σ search early stop")
    p.add_argument("--perms", default=d.symmetries, help="auto, none, or a .npy (P, N) array")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits")


def _ignore_pbc_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ignore-pbc",
        action="store_true",
        help="use geometries that carry a periodic cell as isolated systems (default: refuse)",
    )


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    md = DynamicsSettings()
    p = argparse.ArgumentParser(prog="deltagdml", description=__doc__, formatter_class=fmt)
    p.add_argument("--version", action="version", version=f"deltagdml {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one sGDML model", formatter_class=fmt)
    t.add_argument("dataset", help="sGDML dataset .npz")
    t.add_argument("-o", "--output", required=True, help="model .npz (sGDML layout)")
    _training_options(t)
    t.add_argument("--splits", help="splits .npz with idxs_train/valid/test (overrides --n-*)")
    t.add_argument("--scores", help="write validation scores per σ to this JSON file")
    _ignore_pbc_option(t)
    t.set_defaults(func=cmd_train)

    d = sub.add_parser(
        "train-delta", help="train a Δ model: fragment models + binding", formatter_class=fmt
    )
    d.add_argument("dataset", help="complex: sGDML .npz or any ase.io file with E and F")
    d.add_argument(
        "--fragments",
        nargs="+",
        required=True,
        help='one index list per fragment ("0-11" "12-14", or "0,3,5-7"), or "connectivity"',
    )
    d.add_argument("--charges", type=int, nargs="+", help="per fragment (default 0)")
    d.add_argument("--multiplicities", type=int, nargs="+", help="per fragment (default 1)")
    d.add_argument("--fragment-labels", nargs="+", help="one labelled file per fragment")
    d.add_argument(
        "--calculator",
        help="compute fragment labels: tblite, gfnff or module:Class (ASE calculator)",
    )
    d.add_argument("-o", "--output", required=True, help="Δ model file (.npz)")
    d.add_argument("--full-model", help="also train the full model on the same split (.npz)")
    _training_options(d)
    _ignore_pbc_option(d)
    d.set_defaults(func=cmd_train_delta)

    e = sub.add_parser("test", help="errors of a full or Δ model", formatter_class=fmt)
    e.add_argument("model", help="model .npz (full or Δ)")
    e.add_argument("dataset", help="sGDML dataset .npz")
    e.add_argument("--splits", help="splits .npz: test on idxs_test")
    e.add_argument("--n-test", type=_number(int, 0), default=0, help="stratified subset (0 = all)")
    e.add_argument(
        "--include-training",
        action="store_true",
        help="also score the model's own training/validation geometries (matched by md5)",
    )
    e.add_argument("--seed", type=int, default=0, help="seed of the subset")
    _ignore_pbc_option(e)
    e.set_defaults(func=cmd_test)

    r = sub.add_parser("predict", help="energies and forces of geometries", formatter_class=fmt)
    r.add_argument("model", help="model .npz (full or Δ)")
    r.add_argument("geometries", help="sGDML dataset .npz or any file ase.io reads")
    r.add_argument(
        "-o", "--output", required=True, help=".npz (kcal/mol) or .xyz/.extxyz/.traj (eV)"
    )
    _ignore_pbc_option(r)
    r.set_defaults(func=cmd_predict)

    m = sub.add_parser("md", help="Langevin MD with stability checks", formatter_class=fmt)
    m.add_argument("model", help="model .npz (full or Δ)")
    m.add_argument("start", help="start geometry (any ase.io file; the first frame)")
    m.add_argument("--temperature", type=_number(float, 0), default=300.0, help="K")
    m.add_argument("--steps", type=_number(int, 1), default=2000, help="MD steps")
    m.add_argument(
        "--timestep", type=_number(float, 0, strict=True), default=md.timestep_fs, help="fs"
    )
    m.add_argument("--friction", type=_number(float, 0), default=md.friction_per_fs, help="1/fs")
    m.add_argument("--stride", type=_number(int, 1), default=md.stride, help="steps per frame")
    m.add_argument("--seed", type=int, default=0, help="seed of the velocities and noise")
    m.add_argument(
        "--max-uncertainty-ratio",
        type=float,
        default=StabilitySettings().max_uncertainty_ratio,
        help="stop when a model part's uncertainty exceeds this multiple of its calibrated "
        "threshold; None: never (the frames record the uncertainty either way)",
    )
    m.add_argument(
        "-o",
        "--output",
        required=True,
        help=".traj, .xyz or .extxyz (eV, eV/Å); each frame's info: time_ps, uncertainty_<part> "
        "(in uncertainty_unit) and uncertainty_ratio",
    )
    _ignore_pbc_option(m)
    m.set_defaults(func=cmd_md)

    i = sub.add_parser("ipi", help="serve a model as an i-PI client", formatter_class=fmt)
    i.add_argument("model", help="model .npz (full or Δ)")
    i.add_argument("start", help="a geometry of the system (any ase.io file)")
    where = i.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", help="host:port of the i-PI server (TCP)")
    where.add_argument(
        "--unix",
        help="the server's UNIX socket: a path (with a '/', or an existing socket) or a name "
        "under i-PI's default prefix (NAME: /tmp/ipi_NAME)",
    )
    i.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="s to connect and to wait for each message from the server; 0: no limit. Raise it "
        "when the server runs a slower force field too, or has more clients than work",
    )
    i.add_argument(
        "--order-tolerance",
        type=float,
        default=DEFAULT_ORDER_TOLERANCE,
        help="Å: the largest change of a bond of the start structure in the server's first "
        "positions; more means another system or atom order, refused. inf: no check",
    )
    i.add_argument(
        "--uncertainty-log",
        help="CSV: each part's uncertainty and the threshold ratio every --uncertainty-stride "
        "force calls; written live to LOG.partial, moved to LOG when the server ends the run",
    )
    i.add_argument(
        "--uncertainty-stride", type=int, default=md.stride, help="force calls per log line"
    )
    _ignore_pbc_option(i)
    i.set_defaults(func=cmd_ipi)

    x = sub.add_parser(
        "extract", help="one part of a Δ model as an sGDML model", formatter_class=fmt
    )
    x.add_argument("model", help="Δ model file")
    x.add_argument("part", help="fragment_k or binding")
    x.add_argument("-o", "--output", required=True, help="model .npz (sGDML layout)")
    x.set_defaults(func=cmd_extract)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (DeltaGDMLError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
