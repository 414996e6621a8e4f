"""Reference data: systems, MD sampling, labelling, ingestion, Δ datasets and splits.

tblite is imported lazily (by :func:`make_calculator`) so that the single-thread
environment can be set first.
"""

from deltagdml.data.calculators import make_calculator, set_single_thread
from deltagdml.data.delta import build_delta_datasets, write_delta_datasets
from deltagdml.data.ingest import ingest_dataset
from deltagdml.data.labelling import (
    LabellingError,
    chunk_indices,
    combine_labels,
    label_fragments,
    label_frames,
    load_labels,
    merge_labels,
    save_labels,
)
from deltagdml.data.sampling import load_trajectory, sample_md, save_trajectory
from deltagdml.data.splits import load_splits, make_splits, save_splits, train_indices
from deltagdml.data.systems import (
    DEFAULT_SYSTEMS,
    System,
    fragment_atoms,
    ring_axis_point,
    system_from_config,
)

__all__ = [
    "DEFAULT_SYSTEMS",
    "LabellingError",
    "System",
    "build_delta_datasets",
    "chunk_indices",
    "combine_labels",
    "fragment_atoms",
    "ingest_dataset",
    "label_fragments",
    "label_frames",
    "load_labels",
    "load_splits",
    "load_trajectory",
    "make_calculator",
    "make_splits",
    "merge_labels",
    "ring_axis_point",
    "sample_md",
    "save_labels",
    "save_splits",
    "train_indices",
    "save_trajectory",
    "set_single_thread",
    "system_from_config",
    "write_delta_datasets",
]
