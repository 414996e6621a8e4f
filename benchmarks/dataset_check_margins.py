"""How far MD17-like data sit from the dataset checks' limits (and what they refuse).

Usage:  python benchmarks/dataset_check_margins.py [--steps 4000] [--molecules CH3CH2OH C6H6]

MD17 is ab initio Langevin/NVT MD at 500 K with every step (0.5 fs) kept. This runs the
same with GFN2-xTB (tblite, one calculator per molecule) for each molecule, then prints the
statistics of :mod:`deltagdml.gdml.dataset_checks` on the trajectory as written (every step,
in time order), every 10th step, and a shuffled random half, against their limits:

- ``offset``: the largest energy-offset ratio (limit ``ENERGY_OFFSET``);
- ``pair``: the median relative residual of ΔE against the forces' path integral between
  nearest frames (limit ``PAIR_RESIDUAL``), and ``slope`` (ΔE over ΔE_forces: 1 when
  consistent);
- ``frame``: the largest per-frame scaled residual (warning above ``FRAME_RESIDUAL``);
- ``H bond``: the hydrogens' median nearest distance over covalent bond length (limit
  ``BOND_RATIO``); ``scale``: the range of each frame's nearest-distance ratio to the
  dataset's medians (limits 1/``SCALE_RATIO``–``SCALE_RATIO``).

Then the same trajectory with energies in eV (forces in kcal/mol/Å), gradients stored as
forces, positions in bohr, and every other frame in bohr, each of which must be refused.
Units: Å, kcal/mol, kcal/mol/Å.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ase.build import molecule  # noqa: E402

from deltagdml.data.calculators import make_calculator  # noqa: E402
from deltagdml.data.md import langevin  # noqa: E402
from deltagdml.errors import DatasetError  # noqa: E402
from deltagdml.gdml import dataset_checks as checks  # noqa: E402
from deltagdml.units import KCAL_MOL_PER_EV, LENGTH_UNITS_IN_ANG  # noqa: E402


def trajectory(name: str, steps: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """z, R (Å), E (kcal/mol), F (kcal/mol/Å) of every step of 500 K GFN2-xTB MD."""
    atoms = molecule(name)
    atoms.calc = make_calculator(None, 0, 1)
    dyn = langevin(atoms, 500.0, 0.5, 0.002, seed)
    R, E, F = [], [], []

    def record() -> None:
        R.append(atoms.positions.copy())
        E.append(atoms.get_potential_energy() * KCAL_MOL_PER_EV)
        F.append(atoms.get_forces() * KCAL_MOL_PER_EV)

    dyn.attach(record, interval=1)
    dyn.run(steps)
    return atoms.numbers, np.array(R), np.array(E), np.array(F)


def margins(z: np.ndarray, R: np.ndarray, E: np.ndarray, F: np.ndarray) -> str:
    """The checks' statistics on one dataset, as one table row."""
    stats = checks.energy_force_statistics(R, E, F)
    nearest, partner = checks.nearest_distances(R)
    ratio = checks.bond_ratios(z, nearest, partner)
    bond = np.median(ratio[:, z == 1]) if (z == 1).any() else 0
    scale = checks.scale_ratios(nearest)
    frame = stats.get("frame_residual", np.array([np.nan]))
    frame = frame[np.isfinite(frame)].max() if np.isfinite(frame).any() else np.nan
    return (
        f"{len(R):6d} {stats['offset'].max():7.3f} {stats.get('pair_residual', np.nan):6.3f} "
        f"{stats.get('slope', np.nan):6.3f} {frame:6.3f} {bond:6.3f} "
        f"{scale.min():5.3f}–{scale.max():5.3f}"
    )


def refused(z: np.ndarray, R: np.ndarray, E: np.ndarray, F: np.ndarray) -> str:
    try:
        checks.check_labelled(R, z, E, F, "data")
    except DatasetError as err:
        return "refused: " + str(err).removeprefix("data: ")[:90]
    return "ACCEPTED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--molecules", nargs="+", default=["CH3CH2OH", "C6H6", "CH3COOH"])
    args = parser.parse_args()
    bohr = LENGTH_UNITS_IN_ANG["bohr"]
    print(
        f"limits: offset {checks.ENERGY_OFFSET}, pair {checks.PAIR_RESIDUAL}, frame (warning) "
        f"{checks.FRAME_RESIDUAL}, H bond {checks.BOND_RATIO}, scale "
        f"{1 / checks.SCALE_RATIO:.2f}–{checks.SCALE_RATIO}"
    )
    for name in args.molecules:
        t0 = time.perf_counter()
        z, R, E, F = trajectory(name, args.steps)
        print(f"\n{name}: {len(R)} frames of 500 K GFN2-xTB MD in {time.perf_counter() - t0:.0f} s")
        print(f"{'set':22s} {'frames':>6s} {'offset':>7s} {'pair':>6s} {'slope':>6s} "
              f"{'frame':>6s} {'H bond':>6s} {'scale':>11s}")  # fmt: skip
        half = np.random.default_rng(0).permutation(len(R))[: len(R) // 2]
        for label, idx in (
            ("every step", slice(None)),
            ("every 10th step", slice(None, None, 10)),
            ("shuffled half", half),
        ):
            print(f"{label:22s} {margins(z, R[idx], E[idx], F[idx])}")
        mixed = R.copy()
        mixed[1::2] /= bohr
        for label, data in (
            ("energies in eV", (R, E / KCAL_MOL_PER_EV, F)),
            ("gradients as forces", (R, E, -F)),
            ("positions in bohr", (R / bohr, E, F)),
            ("every other in bohr", (mixed, E, F)),
        ):
            print(f"{label:22s} {refused(z, *data)}")


if __name__ == "__main__":
    main()
