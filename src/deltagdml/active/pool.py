"""The training pool grows: new labelled frames are appended to the labels, and to the
training indices of the parts that need them; validation and test sets never change.
"""

from __future__ import annotations

import numpy as np

from deltagdml.data.labelling import validate_labels
from deltagdml.data.splits import train_indices
from deltagdml.errors import DatasetError

STATIC_KEYS = ("z", "n_fragments")


def append_labels(base: dict, new: dict) -> dict[str, np.ndarray]:
    """Labels of ``base`` followed by those of ``new`` (same system and keys); the new
    frames are numbered on from the last frame of ``base``."""
    if set(base) != set(new):
        raise DatasetError(f"appended labels have keys {sorted(new)}, the pool {sorted(base)}")
    out = {}
    for key, value in base.items():
        if key in STATIC_KEYS or key.startswith("frag_idx_"):
            if not np.array_equal(value, new[key]):
                raise DatasetError(f"appended labels: '{key}' differs from the pool's")
            out[key] = value
        elif key == "frame_index":
            out[key] = np.concatenate([value, value.max() + 1 + np.arange(len(new["R"]))])
        else:
            out[key] = np.concatenate([value, new[key]])
    validate_labels(out, source="pooled labels")
    return out


def grow_splits(
    splits: dict[str, np.ndarray], n_before: int, needs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Splits with new frames n_before, n_before + 1, … added to the training indices of
    each learned part p where ``needs[p]`` (bool per new frame) holds. Every learned part
    gets its own ``train_<p>``; ``train`` is their union (the full model's training set)."""
    out = {key: splits[key] for key in ("valid", "test")}
    new = n_before + np.arange(len(next(iter(needs.values()))))
    for part, mask in needs.items():
        out[f"train_{part}"] = np.concatenate([train_indices(splits, part), new[mask]])
    out["train"] = np.unique(np.concatenate([splits["train"], *(out[f"train_{p}"] for p in needs)]))
    return out
