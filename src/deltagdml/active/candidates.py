"""Frames to label in a round: where exploration left the data, or came just before a
failure; a diverse subset of them, and the parts that need each.

Ratios are a part's uncertainty over its calibrated threshold (above 1: outside its data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deltagdml.active.explore import is_failure, part_ratios
from deltagdml.gdml.descriptor import descriptor
from deltagdml.gdml.uncertainty import farthest_points


@dataclass
class Candidates:
    """Frames collected from exploration runs (K of them)."""

    R: np.ndarray  # (K, N, 3) Å
    ratio: np.ndarray  # (K, n_parts): each part's uncertainty over its threshold
    parts: list[str]  # learned parts, the columns of ``ratio``
    before_failure: np.ndarray  # (K,) bool: one of the frames just before a failure
    source: np.ndarray  # (K, 3): temperature (K), run, frame of the run
    accept_ratio: float = 1.0  # a part above this × its threshold needs the frame

    def needs(self) -> np.ndarray:
        """(K, n_parts) bool: the parts each frame is added to — those above
        ``accept_ratio`` × their threshold; every part for a frame before a failure that no
        part flagged."""
        above = self.ratio > self.accept_ratio
        unflagged = ~above.any(axis=1) & self.before_failure
        return above | unflagged[:, None]


def collect(
    explorations: list[dict], pre_failure_frames: int, accept_ratio: float = 1.0
) -> Candidates:
    """Frames of ``explorations`` (loaded exploration files, one per temperature) whose
    ratio exceeds ``accept_ratio`` for some part, and the ``pre_failure_frames`` saved frames
    before each failure (the failing frame itself excluded: it may be unphysical)."""
    parts = list(part_ratios(explorations[0]))
    R, ratio, before, source = [], [], [], []
    for data in explorations:
        r = np.stack([part_ratios(data)[p] for p in parts], axis=1)
        for run, reason in enumerate(data["reasons"]):
            idx = np.flatnonzero(data["run"] == run)
            failed = is_failure(reason)
            keep = r[idx].max(axis=1) > accept_ratio
            pre = np.zeros(len(idx), dtype=bool)
            if failed:
                keep[-1] = False
                pre[max(0, len(idx) - 1 - pre_failure_frames) : len(idx) - 1] = True
            chosen = idx[keep | pre]
            R.append(data["R"][chosen])
            ratio.append(r[chosen])
            before.append(pre[keep | pre])
            frame = chosen - idx[0]
            source.append(
                np.column_stack(
                    [np.full(len(chosen), data["temperature_K"]), np.full(len(chosen), run), frame]
                )
            )
    n_atoms = explorations[0]["R"].shape[1]
    return Candidates(
        R=np.concatenate(R) if R else np.empty((0, n_atoms, 3)),
        ratio=np.concatenate(ratio) if ratio else np.empty((0, len(parts))),
        parts=parts,
        before_failure=np.concatenate(before) if before else np.empty(0, dtype=bool),
        source=np.concatenate(source) if source else np.empty((0, 3)),
        accept_ratio=accept_ratio,
    )


def select(candidates: Candidates, budget: int) -> np.ndarray:
    """Indices of at most ``budget`` diverse candidates: farthest points in the complex's
    inverse-distance descriptor space, starting from the frame of the largest ratio."""
    if len(candidates.R) == 0:
        return np.empty(0, dtype=int)
    X = descriptor(candidates.R)
    first = int(np.argmax(candidates.ratio.max(axis=1)))
    return farthest_points(X, np.arange(X.shape[1])[None], budget, first)
