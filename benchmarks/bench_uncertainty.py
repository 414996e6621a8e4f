"""Which uncertainty estimator should be the default? Rank correlation with the true force
error in and out of distribution, and cost.

For every system of a finished pipeline run, its full model, its Δ model and each learned
Δ part, every candidate estimator is scored by the Spearman rank correlation ρ between its
uncertainty and the true force error per geometry (mean |F_pred − F_ref| over atoms and
components, kcal/mol/Å) on

(a) the test geometries of the run's splits;
(b) out-of-distribution (OOD) geometries: Langevin MD with the full and the Δ model from the
    MD study's start geometry at ``--temperatures`` for up to ``--duration-ps`` (stability
    criteria: the defaults of ``StabilitySettings``); the frames of the last ``--window-ps``
    before each failure (no run fails: of the hottest runs' last ``--window-ps``), ``--n-ood``
    of them evenly spread, relabelled with the run's reference method (complex and isolated
    fragments, as the datasets were built; a frame whose calculation fails is dropped).

Every model is scored on all OOD frames of its system (from both models' runs). The binding
part's error is against the binding forces F − F0 (complex minus isolated fragments), a
fragment part's against its isolated fragment's forces.

Candidates: ``gp <size>`` (GP posterior energy std with a system of order (3N + 1)·m ≤ size;
``exact``: all M training geometries; a size that is already exact for a model is skipped),
``nearest`` (descriptor distance to the nearest training geometry, σ), and a committee of 4
models fitted at the model's σ on 4 seeded random halves of its training set: the std of
their energies (``committee E``) or the RMS over atoms and components of the std of their
forces (``committee F``). For the Δ model, 'gp' and 'nearest' combine the parts as
``DeltaModel.predict_std`` does (√Σ std²); its committee is the std over the 4 composites of
the parts' members.

Cost: the time of the uncertainty over the time of ``predict``, for single-geometry calls
(median over ``--n-single`` test geometries) and for one call on all test geometries (best of
3); setup: building the estimator (the committee: fitting its members), s. One thread.
MD runs and relabelled frames are cached in ``--cache``, keyed by models and settings.

Usage:
  OMP_NUM_THREADS=1 nice python benchmarks/bench_uncertainty.py RESULTS [--config CONFIG]
      [--systems a b ...] [--cache DIR] [--csv FILE]
e.g. python benchmarks/bench_uncertainty.py results --csv uncertainty.csv
(CONFIG defaults to the config.yaml next to RESULTS.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from ase import Atoms  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from deltagdml.data.labelling import LabellingError, label_frames  # noqa: E402
from deltagdml.data.splits import load_splits, train_indices  # noqa: E402
from deltagdml.data.systems import System, model_parts  # noqa: E402
from deltagdml.dynamics.run import MDCalculator, run_md  # noqa: E402
from deltagdml.gdml.composite import DeltaModel, FragmentTerm  # noqa: E402
from deltagdml.gdml.dataset import Dataset, load_dataset  # noqa: E402
from deltagdml.gdml.model import GDMLModel  # noqa: E402
from deltagdml.gdml.model_io import load_model  # noqa: E402
from deltagdml.settings import StabilitySettings  # noqa: E402
from deltagdml.workflow.config import (  # noqa: E402
    dynamics_settings,
    load_system,
    reference_settings,
)
from deltagdml.workflow.steps.dynamics import start_index  # noqa: E402

Model = GDMLModel | DeltaModel
N_MEMBERS = 4


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def digest(*items: object) -> str:
    """Short hash of files (Path), bytes and values (their repr), for cache file names."""
    h = hashlib.sha1()
    for item in items:
        if isinstance(item, Path):
            item = item.read_bytes()
        h.update(item if isinstance(item, bytes) else repr(item).encode())
    return h.hexdigest()[:12]


# -- OOD frames ------------------------------------------------------------------------
@dataclass
class Run:
    """A cached MD run: saved frames R (Å) at time_ps, and why it stopped (None: stable)."""

    label: str
    temperature_K: float
    R: np.ndarray
    time_ps: np.ndarray
    reason: str | None


def md_runs(
    config: dict,
    system: System,
    models: dict[str, Model],
    full_ds: Dataset,
    split: dict[str, np.ndarray],
    model_files: list[Path],
    args: argparse.Namespace,
) -> list[Run]:
    """MD runs of each model at each temperature, from the MD study's start geometry."""
    s = dynamics_settings(config, system.name)
    n_steps = int(round(args.duration_ps * 1000 / s.timestep_fs))
    i0 = start_index(full_ds.E, train_indices(split, "full"), s.start)
    seed = int(config.get("seed", 0))
    runs = []
    for label, model in models.items():
        for T in args.temperatures:
            key = digest(*model_files, label, T, n_steps, s, seed, StabilitySettings())
            path = args.cache / system.name / f"md_{label}_{T:g}K_{key}.npz"
            if not path.exists():
                log(f"{system.name}: MD of the {label} model at {T:g} K, {args.duration_ps} ps")
                res = run_md(
                    Atoms(system.z, positions=full_ds.R[i0]),
                    MDCalculator(model),
                    system.fragments,
                    T,
                    s.timestep_fs,
                    n_steps,
                    s.stride,
                    s.friction_per_fs,
                    seed,
                    StabilitySettings(),
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, R=res.R, time_ps=res.time_ps, reason=np.array(res.reason or ""))
            with np.load(path) as f:
                reason = str(f["reason"]) or None
                runs.append(Run(label, T, f["R"], f["time_ps"], reason))
    return runs


def ood_pool(runs: list[Run], window_ps: float) -> tuple[np.ndarray, list[str]]:
    """Frames of the last ``window_ps`` before each failure (no failure: of the hottest
    runs), without non-finite ones; and a description of each run used."""
    failed = [r for r in runs if r.reason is not None]
    hottest = max(r.temperature_K for r in runs)
    used = failed or [r for r in runs if r.temperature_K == hottest]
    frames, notes = [], []
    for r in used:
        keep = r.time_ps >= r.time_ps[-1] - window_ps
        keep &= np.isfinite(r.R).all(axis=(1, 2))
        frames.append(r.R[keep])
        end = f"{r.reason} at {r.time_ps[-1]:.2f} ps" if r.reason else "stable"
        notes.append(f"{r.label} {r.temperature_K:g} K ({end})")
    return np.concatenate(frames), notes


def ood_frames(
    config: dict, system: System, runs: list[Run], args: argparse.Namespace
) -> tuple[dict[str, np.ndarray], list[str]]:
    """``--n-ood`` evenly spread pool frames relabelled with the reference (cached)."""
    pool, notes = ood_pool(runs, args.window_ps)
    pick = np.unique(np.linspace(0, len(pool) - 1, min(args.n_ood, len(pool))).round())
    R = pool[pick.astype(int)]
    reference = reference_settings(config)
    path = args.cache / system.name / f"ood_{digest(R.tobytes(), reference)}.npz"
    if path.exists():
        with np.load(path) as f:
            return dict(f), notes
    log(f"{system.name}: relabelling {len(R)} OOD frames with {reference.as_config()}")
    labelled = []
    for i, pos in enumerate(R):
        try:
            labelled.append(label_frames(system, pos[None], reference, lambda _: None))
        except LabellingError as exc:
            log(f"{system.name}: frame {i} dropped: {exc}")
    keys = ["R", "F", *(f"F_frag_{k}" for k in range(system.n_fragments))]
    labels = {key: np.concatenate([lab[key] for lab in labelled]) for key in keys}
    np.savez(path, **labels)
    return labels, notes


# -- targets and candidates ------------------------------------------------------------
@dataclass
class Target:
    """A model (or part) with its test and OOD geometries and reference forces (kcal/mol/Å)."""

    name: str
    model: Model
    R_test: np.ndarray
    F_test: np.ndarray
    R_ood: np.ndarray
    F_ood: np.ndarray


def force_error(model: Model, R: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Mean |F_pred − F| per geometry over atoms and components (kcal/mol/Å)."""
    return np.abs(model.predict(R)[1] - F).mean(axis=(1, 2))


def rho(u: np.ndarray, err: np.ndarray) -> float:
    return float(spearmanr(u, err).statistic)


def clock(f: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def cost_ratios(
    pred: Callable[[np.ndarray], object],
    unc: Callable[[np.ndarray], object],
    R: np.ndarray,
    n_single: int,
) -> tuple[float, float]:
    """Time of ``unc`` over time of ``pred``: single geometries (median), all R (best of 3)."""
    single = [R[i : i + 1] for i in range(min(n_single, len(R)))]
    ratio_single = np.median([clock(lambda r=r: unc(r)) for r in single]) / np.median(
        [clock(lambda r=r: pred(r)) for r in single]
    )
    ratio_batch = min(clock(lambda: unc(R)) for _ in range(3)) / min(
        clock(lambda: pred(R)) for _ in range(3)
    )
    return float(ratio_single), float(ratio_batch)


def gdml_models(model: Model) -> list[GDMLModel]:
    return list(model.parts().values()) if isinstance(model, DeltaModel) else [model]


def exact_size(m: GDMLModel) -> int:
    """Order (3N + 1)·M of the exact GP system of ``m``."""
    return m.X_train_.shape[0] * (3 * m.n_atoms + 1)


def set_estimator(model: Model, method: str, size: str, R1: np.ndarray) -> float:
    """Switch every sGDML model in ``model`` to ``method`` ('gp' of order ≤ ``size``, or
    'exact'); return the time to build the estimators (s): the first call on one geometry
    ``R1`` minus the fastest of three more (≥ 0)."""
    for m in gdml_models(model):
        if method == "gp":
            m.set_uncertainty("gp", exact_size(m) if size == "exact" else int(size))
        else:
            m.set_uncertainty(method)
    first = clock(lambda: model.predict_std(R1))
    return max(first - min(clock(lambda: model.predict_std(R1)) for _ in range(3)), 0.0)


def gp_is_exact(model: Model, size: str) -> bool:
    """Whether a GP of order ≤ ``size`` uses all training geometries of every sGDML model
    in ``model``."""
    return size == "exact" or all(exact_size(m) <= int(size) for m in gdml_models(model))


def fit_members(
    model: GDMLModel, ds: Dataset, train: np.ndarray, seed: int
) -> tuple[list[GDMLModel], float]:
    """Committee members at ``model``'s σ on random halves of ``train``; and their fit time."""
    rng = np.random.default_rng(seed)
    members, t0 = [], time.perf_counter()
    for _ in range(N_MEMBERS):
        half = np.sort(rng.choice(train, len(train) // 2, replace=False))
        member = GDMLModel(sigma=model.sigma, lam=model.lam, perms=model.perms_, solver="analytic")
        members.append(
            member.fit(ds.R[half], ds.z, ds.F[half], ds.E[half] if model.use_E_ else None)
        )
    return members, time.perf_counter() - t0


def delta_members(delta: DeltaModel, members: dict[str, list[GDMLModel]]) -> list[DeltaModel]:
    """The composites of the parts' i-th members (constant fragments kept)."""
    out = []
    for i in range(N_MEMBERS):
        terms = [
            FragmentTerm(f.atoms, members[f"fragment_{k}"][i])
            if f.model is not None
            else FragmentTerm(f.atoms, None, f.constant_energy)
            for k, f in enumerate(delta.fragments)
        ]
        out.append(DeltaModel(delta.z_, terms, members["binding"][i]))
    return out


def committee_std(members: list, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Std of the members' energies (Q,), RMS over atoms and components of their forces' std."""
    E, F = zip(*(m.predict(R) for m in members), strict=True)
    return np.std(E, axis=0), np.sqrt(np.mean(np.var(F, axis=0), axis=(1, 2)))


# -- one system ------------------------------------------------------------------------
def system_targets(
    system: System,
    models: dict[str, Model],
    datasets: dict[str, Dataset],
    test: np.ndarray,
    ood: dict[str, np.ndarray],
) -> list[Target]:
    """Full model, Δ model and the Δ parts, each with its reference forces."""
    R_ood, F_ood = ood["R"], ood["F"]
    full_F = datasets["full"]
    targets = [
        Target(name, models[name], full_F.R[test], full_F.F[test], R_ood, F_ood)
        for name in ("full", "delta")
    ]
    F0_ood = np.zeros_like(F_ood)
    for k, idx in enumerate(system.fragments):
        F0_ood[:, idx] = ood[f"F_frag_{k}"]
        if len(idx) > 1:
            ds = datasets[f"fragment_{k}"]
            part = models["delta"].parts()[f"fragment_{k}"]
            args = (ds.R[test], ds.F[test], R_ood[:, idx], ood[f"F_frag_{k}"])
            targets.append(Target(f"fragment_{k}", part, *args))
    b = datasets["binding"]
    binding = models["delta"].binding
    targets.append(Target("binding", binding, b.R[test], b.F[test], R_ood, F_ood - F0_ood))
    return targets


def bench_system(config: dict, results: Path, name: str, args: argparse.Namespace) -> list[dict]:
    system = load_system(config, name, args.config.parent)
    res = results / name
    parts = model_parts(system)
    model_files = [res / "models" / f"{p}.npz" for p in parts]
    datasets = {p: load_dataset(res / "datasets" / f"{p}.npz") for p in parts}
    split = load_splits(res / "splits.npz", datasets["full"].n_geometries)
    paths = dict(zip(parts, model_files, strict=True))
    binding_ds = res / "datasets" / "binding.npz"
    models: dict[str, Model] = {
        "full": load_model(paths["full"]),
        "delta": DeltaModel.from_files(system.z, system.fragments, paths, binding_ds),
    }
    runs = md_runs(config, system, models, datasets["full"], split, model_files, args)
    ood, notes = ood_frames(config, system, runs, args)
    test = split["test"]
    print(f"{name}: {len(test)} test frames; {len(ood['R'])} OOD frames from " + ", ".join(notes))
    targets = system_targets(system, models, datasets, test, ood)
    errors = {
        t.name: (force_error(t.model, t.R_test, t.F_test), force_error(t.model, t.R_ood, t.F_ood))
        for t in targets
    }
    rows = []

    def add(t: Target, candidate: str, u_test, u_ood, costs, setup_s: float) -> None:
        e_test, e_ood = errors[t.name]
        rows.append(
            {
                "system": name,
                "model": t.name,
                "candidate": candidate,
                "rho_test": rho(u_test, e_test),
                "rho_ood": rho(u_ood, e_ood),
                "cost_single": costs[0],
                "cost_batch": costs[1],
                "setup_s": setup_s,
            }
        )

    candidates = [("gp", size) for size in args.gp_sizes] + [("nearest", "")]
    for i, (method, size) in enumerate(candidates):
        label = f"{method} {size}".strip()
        log(f"{name}: {label}")
        # the Δ model shares its parts' estimators: its setup is theirs
        setups = {
            t.name: set_estimator(t.model, method, size, t.R_test[:1])
            for t in targets
            if t.name != "delta"
        }
        setups["delta"] = sum(setups[p] for p in models["delta"].parts())
        for t in targets:
            if method == "gp" and any(gp_is_exact(t.model, s) for s in args.gp_sizes[:i]):
                continue  # a smaller size is already exact
            costs = cost_ratios(t.model.predict, t.model.predict_std, t.R_test, args.n_single)
            u = t.model.predict_std(t.R_test), t.model.predict_std(t.R_ood)
            add(t, label, *u, costs, setups[t.name])

    # the Δ model's committee is made of its parts' members: fit those first
    members, fit_s = {}, {}
    for t in sorted(targets, key=lambda t: t.name == "delta"):
        log(f"{name}/{t.name}: committee")
        if t.name == "delta":
            committee = delta_members(t.model, members)
            fit_s["delta"] = sum(fit_s[p] for p in t.model.parts())
        else:
            train = train_indices(split, t.name)
            members[t.name], fit_s[t.name] = fit_members(
                t.model, datasets[t.name], train, args.seed
            )
            committee = members[t.name]
        costs = cost_ratios(
            t.model.predict, lambda R, c=committee: committee_std(c, R), t.R_test, args.n_single
        )
        (E_test, F_test), (E_ood, F_ood) = (
            committee_std(committee, R) for R in (t.R_test, t.R_ood)
        )
        add(t, "committee E", E_test, E_ood, costs, fit_s[t.name])
        add(t, "committee F", F_test, F_ood, costs, fit_s[t.name])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results directory of a pipeline run")
    parser.add_argument("--config", type=Path, help="its config (default: RESULTS/../config.yaml)")
    parser.add_argument("--systems", nargs="*", help="default: every configured system")
    parser.add_argument(
        "--cache",
        type=Path,
        help="MD and labels kept for reruns; default: RESULTS/bench_uncertainty",
    )
    parser.add_argument("--csv", type=Path, help="also write the table here")
    parser.add_argument("--gp-sizes", nargs="+", default=["1500", "exact"])
    parser.add_argument("--temperatures", nargs="+", type=float, default=[400.0, 800.0])
    parser.add_argument("--duration-ps", type=float, default=10.0)
    parser.add_argument("--window-ps", type=float, default=0.5)
    parser.add_argument("--n-ood", type=int, default=48)
    parser.add_argument("--n-single", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="of the committees' halves")
    args = parser.parse_args()
    args.cache = args.cache or args.results / "bench_uncertainty"
    args.config = args.config or args.results.resolve().parent / "config.yaml"
    config = yaml.safe_load(args.config.read_text())
    rows = []
    with threadpool_limits(limits=1):
        for name in args.systems or list(config["systems"]):
            rows += bench_system(config, args.results, name, args)
    table = pd.DataFrame(rows)
    print(
        "\nSpearman ρ of uncertainty vs per-geometry mean |ΔF| (kcal/mol/Å); cost = time of the"
        "\nuncertainty / time of predict (single geometry, batch of all test frames); setup in s"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    if args.csv:
        table.to_csv(args.csv, index=False, float_format="%.6g")


if __name__ == "__main__":
    main()
