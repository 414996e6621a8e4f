"""Prediction speed of the previous (allocating) kernel expansion beside the current one.

Usage:  PYTHONPATH=src python benchmarks/bench_predict.py [MODEL.npz ...] [--config config.yaml]
            [--seconds 3] [--md-steps 200] [--repeats 2] [--no-c60] [--old-rev 6743aa2]

MODEL.npz are model files of a pipeline run, ``<results>/<system>/models/<part>.npz`` with
part ``full``, ``binding``, ``fragment_k`` or ``delta``; MD starts from the configured
system's structure (a fragment's atoms for ``fragment_k``). A synthetic C₆₀@buckycatcher Δ
model is added unless ``--no-c60``: C₆₀ with its 120 bond-graph permutations, the catcher
with its 4, a binding model without permutations, 75 training geometries each and random
weights (a prediction costs the same for any weights).

Each (model, version) case runs in a fresh process that loads the model as a workflow job
does (from its file, nothing trained); the versions alternate, best of ``--repeats``. The
previous version is ``src/deltagdml/gdml/expansion.py`` at ``--old-rev``, read from git into
a temporary module; both expansions are built from the same model arrays. One BLAS thread.
Times are process CPU time (the machine may be shared), so rates are per CPU second:

- calls/s: single-geometry ``model.predict`` calls;
- MD steps/s: a plain loop of ASE Langevin MD at 300 K (``deltagdml.data.md.langevin``,
  the system's timestep and friction) with ``MDCalculator``, integrator included; no
  stability or uncertainty monitor, so only the model's cost differs between versions;
- faults/call: minor page faults (``getrusage``) per single-geometry call;
- GFlop/s: flops of one call / CPU time per call, against the machine's one-thread DGEMM
  rate printed at the end (the ceiling of the dense products). Per expansion with M training
  geometries, P permutations and D = N(N−1)/2 descriptor entries, summed over a Δ model's
  parts: 8·P·M·D (the products of the P permuted queries with the 2M × D training matrix
  and back) + 15·P·M (kernel terms) + 6·P·D (query norms, gradient terms, permutation sum)
  + 24·D (descriptor, Jacobian and forces).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from ase import Atoms  # noqa: E402
from bench_md import random_delta  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from deltagdml.data.md import langevin  # noqa: E402
from deltagdml.data.systems import fragment_atoms  # noqa: E402
from deltagdml.dynamics.run import MDCalculator  # noqa: E402
from deltagdml.gdml.calculator import EnergyForceModel  # noqa: E402
from deltagdml.gdml.composite import DeltaModel  # noqa: E402
from deltagdml.gdml.delta_io import load_model  # noqa: E402
from deltagdml.settings import DynamicsSettings  # noqa: E402
from deltagdml.workflow.config import dynamics_settings, load_system  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
C60 = "c60"
C60_CONFIG = {"systems": {"c60_buckycatcher": {"preset": "c60_buckycatcher"}}}


def expansion_parts(model: EnergyForceModel) -> list:
    """The learned models (with ``expansion_``) of a single or Δ model."""
    return list(model.parts().values()) if isinstance(model, DeltaModel) else [model]


def flops_per_call(model: EnergyForceModel) -> float:
    """Floating-point operations of one single-geometry prediction (see the docstring)."""
    total = 0
    for part in expansion_parts(model):
        e = part.expansion_
        P, M, D = e.P, e.M, e.D
        total += 8 * P * M * D + 15 * P * M + 6 * P * D + 24 * D
    return float(total)


def use_old_expansion(model: EnergyForceModel, path: str) -> None:
    """Swap each part's expansion for the previous version's, built from the same arrays."""
    spec = importlib.util.spec_from_file_location("old_expansion", path)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    for part in expansion_parts(model):
        e = part.expansion_
        part.expansion_ = old.KernelExpansion(part.X_train_, part.V_, e.perms, e.sigma, e.std, e.c)


def load_case(spec: str, config_path: str) -> tuple[EnergyForceModel, Atoms, DynamicsSettings]:
    """Model, start geometry and dynamics settings of a case."""
    if spec == C60:
        name, config = "c60_buckycatcher", C60_CONFIG
        system = load_system(config, name)
        model = random_delta(system, 75, "auto", "none")
        return model, system.atoms, dynamics_settings(config, name)
    path = Path(spec)
    name, part = path.parent.parent.name, path.stem
    config = yaml.safe_load(open(config_path))
    system = load_system(config, name)
    atoms = system.atoms
    if part.startswith("fragment_"):
        atoms = fragment_atoms(system, int(part.split("_")[1]))
    return load_model(path), atoms, dynamics_settings(config, name)


def md_steps_per_s(
    model: EnergyForceModel, atoms: Atoms, settings: DynamicsSettings, steps: int
) -> float:
    """Langevin MD steps at 300 K per CPU second (see the docstring)."""
    atoms = Atoms(atoms.numbers, positions=atoms.positions)
    atoms.calc = MDCalculator(model)
    dyn = langevin(atoms, 300.0, settings.timestep_fs, settings.friction_per_fs, 0)
    t0 = time.process_time()
    dyn.run(steps)
    return steps / (time.process_time() - t0)


def measure(spec: str, version: str, args: argparse.Namespace) -> dict:
    """Speed of one case in this process (see the docstring)."""
    model, atoms, settings = load_case(spec, args.config)
    if version == "old":
        use_old_expansion(model, args.old_file)
    rng = np.random.default_rng(0)
    geometries = atoms.positions + 0.01 * rng.normal(size=(16, *atoms.positions.shape))
    model.predict(geometries[0])
    calls, faults0, t0 = 0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
    while time.process_time() - t0 < args.seconds:
        model.predict(geometries[calls % len(geometries)])
        calls += 1
    seconds = time.process_time() - t0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    md_rate = md_steps_per_s(model, atoms, settings, args.md_steps)
    shapes = [(p.expansion_.P, p.expansion_.M, p.expansion_.D) for p in expansion_parts(model)]
    return {
        "atoms": len(atoms),
        "shapes": shapes,
        "calls_per_s": calls / seconds,
        "md_steps_per_s": md_rate,
        "faults_per_call": faults / calls,
        "gflops": flops_per_call(model) * calls / seconds / 1e9,
    }


def run_case(spec: str, version: str, args: argparse.Namespace, old_file: str) -> dict:
    """:func:`measure` in a fresh process."""
    cmd = [sys.executable, __file__, spec, "--worker", version, "--old-file", old_file]
    cmd += ["--config", args.config, "--seconds", str(args.seconds)]
    cmd += ["--md-steps", str(args.md_steps)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{spec} ({version}) failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def label(spec: str) -> str:
    if spec == C60:
        return "c60_buckycatcher/delta (synthetic)"
    path = Path(spec)
    return f"{path.parent.parent.name}/{path.stem}"


def dgemm_peak(seconds: float = 2.0, n: int = 2000) -> float:
    """GFlop/s of a large one-thread DGEMM: the ceiling of the expansion's dense products."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)), rng.random((n, n))
    with threadpool_limits(limits=1, user_api="blas"):
        a @ b
        calls, t0 = 0, time.process_time()
        while time.process_time() - t0 < seconds:
            a @ b
            calls += 1
        return 2.0 * n**3 * calls / (time.process_time() - t0) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model files of a pipeline run")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU time of the calls")
    parser.add_argument("--md-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-c60", action="store_true")
    parser.add_argument("--old-rev", default="6743aa2")
    parser.add_argument("--worker", choices=("old", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--old-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        with threadpool_limits(limits=1, user_api="blas"):
            print(json.dumps(measure(args.models[0], args.worker, args)))
        return
    specs = [*args.models] + ([] if args.no_c60 else [C60])
    source = subprocess.run(
        ["git", "show", f"{args.old_rev}:src/deltagdml/gdml/expansion.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print(
        f"Single-geometry prediction, old = expansion.py at {args.old_rev}, new = working tree; "
        f"1 BLAS thread, rates per CPU second, best of {args.repeats}"
    )
    header = f"{'version':>9s} {'calls/s':>8s} {'MD steps/s':>10s} {'faults/call':>11s}"
    with tempfile.TemporaryDirectory() as tmp:
        old_file = str(Path(tmp, "old_expansion.py"))
        Path(old_file).write_text(source)
        for spec in specs:
            best: dict[str, dict] = {}
            for _ in range(args.repeats):
                for version in ("old", "new"):
                    r = run_case(spec, version, args, old_file)
                    if version not in best or r["calls_per_s"] > best[version]["calls_per_s"]:
                        best[version] = r
            shapes = " + ".join(f"{P}·{M}·{D}" for P, M, D in best["new"]["shapes"])
            print(f"\n{label(spec)}: {best['new']['atoms']} atoms, P·M·D = {shapes}")
            print(f"{header} {'GFlop/s':>8s}")
            for version, r in best.items():
                print(
                    f"{version:>9s} {r['calls_per_s']:8.0f} {r['md_steps_per_s']:10.0f} "
                    f"{r['faults_per_call']:11.0f} {r['gflops']:8.1f}"
                )
            old, new = best["old"], best["new"]
            print(
                f"{'new/old':>9s} {new['calls_per_s'] / old['calls_per_s']:7.2f}× "
                f"{new['md_steps_per_s'] / old['md_steps_per_s']:9.2f}×",
                flush=True,
            )
    peak = dgemm_peak()
    print(
        f"\nCeiling: a one-thread 2000×2000 DGEMM runs at {peak:.1f} GFlop/s here; a model at "
        "G GFlop/s can get at most peak/G × faster without fewer flops."
    )


if __name__ == "__main__":
    main()
