"""MD speed (steps/s) of the full and Δ models of every configured system, one thread.

Usage:  PYTHONPATH=src python benchmarks/bench_md.py [--config config.yaml] [--results DIR]
            [--steps 400] [--systems a b ...]

With ``--results`` the trained models of a pipeline run are used. Without it, models of the
configured size get random weights: a prediction costs the same for any weights of the same
number of training geometries (n_train), atoms and permutations, so this measures the speed
of a pipeline's models before training them. Each run is 300 K Langevin MD with the
stability monitor of the MD study (every ``stride`` steps), as in the workflow; with random
weights the monitor checks but never stops a run.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from deltagdml.data.systems import System, model_parts  # noqa: E402
from deltagdml.dynamics.run import MDCalculator, run_md  # noqa: E402
from deltagdml.gdml.composite import DeltaModel, FragmentTerm  # noqa: E402
from deltagdml.gdml.descriptor import descriptor  # noqa: E402
from deltagdml.gdml.expansion import KernelExpansion  # noqa: E402
from deltagdml.gdml.model_io import load_model  # noqa: E402
from deltagdml.gdml.symmetry import descriptor_permutation, find_permutations  # noqa: E402
from deltagdml.settings import StabilitySettings  # noqa: E402
from deltagdml.workflow.config import (  # noqa: E402
    dynamics_settings,
    load_system,
    training_settings,
)


class RandomModel:
    """A model with ``n_train`` random training descriptors near ``R`` and tiny weights."""

    def __init__(self, R: np.ndarray, z: np.ndarray, n_train: int, symmetries: str) -> None:
        self.z_ = np.asarray(z)
        perms = find_permutations(R[None], z) if symmetries == "auto" else np.arange(len(z))[None]
        rng = np.random.default_rng(0)
        self.X_train_ = descriptor(R[None] + 0.05 * rng.normal(size=(n_train, *R.shape)))
        self.V_ = 1e-6 * rng.normal(size=self.X_train_.shape)
        tril = np.array([descriptor_permutation(p) for p in perms])
        self.perms_ = perms
        self.expansion_ = KernelExpansion(self.X_train_, self.V_, tril, 10.0, 1.0, 0.0)

    @property
    def n_atoms(self) -> int:
        return len(self.z_)

    def predict(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.expansion_.predict(R)


def random_delta(
    system: System, n_train: int, symmetries: str, binding_symmetries: str
) -> DeltaModel:
    """A Δ model of random-weight parts: fragments with ``symmetries``, the binding model
    with ``binding_symmetries``; single-atom fragments are constants."""
    R, z = system.atoms.positions, system.z
    terms = [
        FragmentTerm(f, RandomModel(R[f], z[f], n_train, symmetries))
        if len(f) > 1
        else FragmentTerm(f, None, 0.0)
        for f in system.fragments
    ]
    return DeltaModel(z, terms, RandomModel(R, z, n_train, binding_symmetries))


def random_models(config: dict, name: str) -> dict:
    system = load_system(config, name)
    t = training_settings(config, name)
    full = RandomModel(system.atoms.positions, system.z, t.n_train, t.symmetries)
    return {"full": full, "delta": random_delta(system, t.n_train, t.symmetries, t.symmetries)}


def trained_models(config: dict, name: str, results: str) -> dict:
    system = load_system(config, name)
    paths = {p: f"{results}/{name}/models/{p}.npz" for p in model_parts(system)}
    binding = f"{results}/{name}/datasets/binding.npz"
    return {
        "full": load_model(paths["full"]),
        "delta": DeltaModel.from_files(system.z, system.fragments, paths, binding),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--results", help="pipeline results directory with trained models")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--systems", nargs="*")
    args = parser.parse_args()
    config = yaml.safe_load(open(args.config))
    names = args.systems or list(config["systems"])
    source = "trained" if args.results else "random-weight"
    print(f"MD speed, {source} models, {args.steps} steps at 300 K, 1 thread")
    # random weights give no restoring forces: their runs must not stop on a criterion
    off = {"bond_stretch": np.inf, "min_distance_A": 0.0, "com_margin_A": np.inf}
    off |= {"max_energy_change_kcal_mol_per_atom": np.inf, "max_force_kcal_mol_A": np.inf}
    criteria = StabilitySettings() if args.results else StabilitySettings(**off)
    print(
        f"{'system':20s} {'atoms':>5s} {'n_train':>7s} {'perms':>6s} {'model':>6s} {'steps/s':>8s}"
    )
    for name in names:
        system = load_system(config, name)
        s = dynamics_settings(config, name)
        models = (
            trained_models(config, name, args.results)
            if args.results
            else random_models(config, name)
        )
        for label, model in models.items():
            res = run_md(
                system.atoms,
                MDCalculator(model),
                system.fragments,
                300.0,
                s.timestep_fs,
                args.steps,
                s.stride,
                s.friction_per_fs,
                0,
                criteria,
            )
            full = models["full"]
            print(
                f"{name:20s} {system.n_atoms:5d} {full.expansion_.M:7d} {len(full.perms_):6d} "
                f"{label:>6s} "
                f"{res.steps_per_s:8.0f}" + ("" if res.stable else f"  (stopped: {res.reason})")
            )


if __name__ == "__main__":
    main()
