"""Exploration runs: short MD with the current Δ model that stops where it leaves its data.

Units: Å, ps, K, kcal/mol; uncertainty ratios are dimensionless (a part's uncertainty over
its calibrated threshold).
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Callable

import numpy as np
from ase import Atoms

from deltagdml.atomic_io import save_npz_atomic
from deltagdml.dynamics.run import MDCalculator, run_md
from deltagdml.errors import ModelError
from deltagdml.gdml.composite import DeltaModel, thresholds_by_part
from deltagdml.npz_io import as_str, read_npz
from deltagdml.settings import ActiveLearningSettings, StabilitySettings


def is_failure(reason: str) -> bool:
    """Whether a run's stop ``reason`` is a broken stability criterion (not the stop for
    leaving the data, nor a stable run's '')."""
    return bool(reason) and not reason.startswith("uncertainty")


def part_ratios(data: dict) -> dict[str, np.ndarray]:
    """Each part's uncertainty over its threshold per frame, by part, of an exploration
    run or file (its ``ratio_<part>`` entries)."""
    return {k.removeprefix("ratio_"): v for k, v in sorted(data.items()) if k.startswith("ratio_")}


def largest_ratio(data: dict) -> np.ndarray:
    """The largest part's ratio per frame (:func:`part_ratios`)."""
    return np.max(list(part_ratios(data).values()), axis=0)


def start_indices(E: np.ndarray, train: np.ndarray, n_starts: int) -> np.ndarray:
    """``n_starts`` distinct training geometries at evenly spaced energy quantiles (from the
    lowest to the highest reference energy of the training set)."""
    order = np.asarray(train)[np.argsort(np.asarray(E)[train], kind="stable")]
    n = min(n_starts, len(order))
    return order[np.unique(np.round(np.linspace(0, len(order) - 1, n)).astype(int))]


def run_seed(seed: int, round_: int, temperature_K: float, start: int) -> list[int]:
    """The seed sequence of one exploration run: distinct per round, temperature and start."""
    return [seed, round_, zlib.crc32(f"{temperature_K:g}".encode()), start]


def explore(
    model: DeltaModel,
    fragments: list[np.ndarray],
    starts: np.ndarray,
    temperature_K: float,
    settings: ActiveLearningSettings,
    criteria: StabilitySettings,
    seeds: list[list[int]],
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, np.ndarray]]:
    """One run per start geometry (``starts`` (S, N, 3)) at ``temperature_K``; each stops at
    the first saved frame where a part exceeds ``settings.stop_ratio`` × its threshold, or
    where it breaks ``criteria``. Returns per run: time_ps, R, the ratio of each part
    (``ratio_<part>``) and ``reason`` ('' if stable)."""
    thresholds = thresholds_by_part(model)
    missing = sorted(part for part, t in thresholds.items() if t is None)
    if missing:
        raise ModelError(f"exploration needs calibrated uncertainty thresholds; {missing} lack one")
    criteria = dataclasses.replace(criteria, max_uncertainty_ratio=settings.stop_ratio)
    calc = MDCalculator(model)
    runs = []
    for i, (R0, seed) in enumerate(zip(starts, seeds, strict=True)):
        result = run_md(
            Atoms(model.z_, positions=R0),
            calc,
            fragments,
            temperature_K,
            settings.timestep_fs,
            settings.n_steps,
            settings.stride,
            settings.friction_per_fs,
            np.random.SeedSequence(seed).generate_state(1)[0].item(),
            criteria,
            progress=None if progress is None else lambda line, i=i: progress(f"run {i}: {line}"),
        )
        run = {"time_ps": result.time_ps, "R": result.R, "reason": result.reason or ""}
        for part, std in result.uncertainty.items():
            run[f"ratio_{part}"] = std / thresholds[part]
        runs.append(run)
    return runs


def save_runs(runs: list[dict], path: str | os.PathLike, temperature_K: float) -> None:
    """Write exploration runs as one ``.npz``: frames concatenated with their ``run`` index;
    per run its ``reason`` ('' if stable); Å, ps, K."""
    parts = [f"ratio_{p}" for p in part_ratios(runs[0])]
    save_npz_atomic(
        path,
        run=np.concatenate([np.full(len(r["time_ps"]), i) for i, r in enumerate(runs)]),
        time_ps=np.concatenate([r["time_ps"] for r in runs]),
        R=np.concatenate([r["R"] for r in runs]),
        **{p: np.concatenate([r[p] for r in runs]) for p in parts},
        reasons=np.array([r["reason"] for r in runs]),
        temperature_K=np.array(float(temperature_K)),
        r_unit=np.array("Ang"),
    )


def load_runs(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a file of :func:`save_runs` (arrays; ``reasons`` as a list of str)."""
    data = read_npz(path, ("run", "time_ps", "R", "reasons", "temperature_K"), "exploration runs")
    data["reasons"] = [as_str(r) for r in np.atleast_1d(data["reasons"])]
    data["temperature_K"] = float(data["temperature_K"])
    return data
