"""How decorrelated are a run's sampled frames? Integrated autocorrelation times per replica.

For every system of a finished run, each sampling replica's saved series of the sampler's
potential energy and of the fragments' centre-of-mass distance R_CM are read from
``<results>/<system>/data/replicas/replica_<k>.npz``. The integrated autocorrelation time
τ = 1/2 + Σ_t ρ(t) (in saved frames, summed up to Sokal's window t ≤ 5τ) gives the number of
effectively independent frames, N / (2τ), summed over the replicas.

Usage:
  python benchmarks/frame_correlation.py RESULTS_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def integrated_time(x: np.ndarray, window: float = 5.0) -> float:
    """Integrated autocorrelation time of series ``x`` in samples (≥ 0.5)."""
    x = np.asarray(x, dtype=float) - np.mean(x)
    n = x.size
    if n < 4 or not np.any(x):
        return float("nan")
    f = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n]
    acf /= acf[0]
    tau = 0.5
    for t in range(1, n):
        tau += acf[t]
        if t >= window * tau:
            break
    return float(max(tau, 0.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="the run's results directory")
    args = parser.parse_args()
    rows = []
    for replica in sorted(args.results.glob("*/data/replicas/replica_*.npz")):
        with np.load(replica, allow_pickle=False) as npz:
            t_fs, energy, r_cm = npz["time_fs"], npz["sampler_E"], npz["com_distance"]
        spacing = float(np.median(np.diff(t_fs)))
        row = {"system": replica.parts[-4], "replica": replica.stem, "frames": t_fs.size}
        row["spacing_fs"] = spacing
        for name, series in (("E", energy), ("R_CM", r_cm)):
            tau = integrated_time(series)
            row[f"tau_{name}_fs"] = round(tau * spacing, 1)
            row[f"independent_{name}"] = round(t_fs.size / (2 * tau))
        rows.append(row)
    if not rows:
        raise SystemExit(f"{args.results}: no sampling replicas (*/data/replicas/replica_*.npz)")
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200):
        print("Integrated autocorrelation times of each replica (fs; sampler energy and R_CM)")
        print(table.to_string(index=False))
        totals = table.groupby("system")[["frames", "independent_E", "independent_R_CM"]].sum()
        print("\nFrames and effectively independent frames per system (all replicas)")
        print(totals.to_string())


if __name__ == "__main__":
    main()
