"""Benchmark: default data generation (restrained Langevin MD + GFN2-xTB labelling).

Runs the four small default systems in parallel single-threaded processes and prints,
per system, wall times, frame count, COM-distance range and binding-energy range
(E - sum_k E_k, kcal/mol).

    python benchmarks/bench_data_generation.py [--frames 300] [--stride 10] [--processes 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OMP_NUM_THREADS", "1")

from deltagdml.data import (
    DEFAULT_SYSTEMS,
    label_frames,
    sample_md,
    set_single_thread,
    system_from_config,
)

# Largest first, for load balance across processes.
SYSTEMS = ["benzene_dimer", "na_benzene", "water_benzene", "methane_dimer"]


def run(name: str, n_frames: int, stride: int, timestep_fs: float, temperature_K: float) -> dict:
    set_single_thread()
    system = system_from_config(name, DEFAULT_SYSTEMS[name])
    quiet = lambda msg: None  # noqa: E731
    t0 = time.perf_counter()
    traj = sample_md(
        system, None, temperature_K, timestep_fs, n_frames, stride, seed=0, progress=quiet
    )
    t1 = time.perf_counter()
    labels = label_frames(system, traj["R"], None, progress=quiet)
    t2 = time.perf_counter()
    binding = labels["E"] - sum(labels[f"E_frag_{k}"] for k in range(system.n_fragments))
    return {
        "name": name,
        "atoms": system.n_atoms,
        "md_s": t1 - t0,
        "label_s": t2 - t1,
        "frames": len(traj["R"]),
        "com": (traj["com_distance"].min(), traj["com_distance"].max()),
        "binding": (binding.min(), binding.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--timestep-fs", type=float, default=0.5)
    parser.add_argument("--temperature-K", type=float, default=300.0)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    print(
        f"{args.frames} frames x stride {args.stride}, dt {args.timestep_fs} fs, "
        f"{args.temperature_K} K, {args.processes} processes, OMP_NUM_THREADS="
        f"{os.environ['OMP_NUM_THREADS']}"
    )
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.processes, mp_context=ctx) as pool:
        jobs = [
            pool.submit(run, name, args.frames, args.stride, args.timestep_fs, args.temperature_K)
            for name in SYSTEMS
        ]
        results = [job.result() for job in jobs]
    total = time.perf_counter() - start
    print(
        f"{'system':<15}{'atoms':>6}{'MD s':>8}{'label s':>9}{'frames':>8}"
        f"{'COM dist / Å':>17}{'E_bind / kcal/mol':>22}"
    )
    for r in results:
        print(
            f"{r['name']:<15}{r['atoms']:>6}{r['md_s']:>8.1f}{r['label_s']:>9.1f}"
            f"{r['frames']:>8}{r['com'][0]:>8.2f} – {r['com'][1]:<6.2f}"
            f"{r['binding'][0]:>11.2f} – {r['binding'][1]:<8.2f}"
        )
    print(f"total wall time: {total:.1f} s")


if __name__ == "__main__":
    main()
